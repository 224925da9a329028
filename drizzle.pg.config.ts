import { defineConfig } from "drizzle-kit";

/** The cluster's shared metadata (src/store/schema-pg.ts); drizzle.config.ts is the SQLite side. */
export default defineConfig({ dialect: "postgresql", schema: "./src/store/schema-pg.ts", out: "./drizzle/pg" });
