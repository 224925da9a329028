import { defineConfig } from "drizzle-kit";

/** The cluster's shared metadata (pg tables of src/store/schema.ts); drizzle.config.ts is the SQLite side. */
export default defineConfig({ dialect: "postgresql", schema: "./src/store/schema.ts", out: "./drizzle/pg" });
