/**
 * Builds the single executable dist/agentgate: the app bundled with the Bun
 * runtime, bytecode-compiled for fast start. It must not pick up a `.env` or
 * `bunfig.toml` from whatever directory it is later run in.
 */
import { statSync } from "node:fs";

const outfile = "dist/agentgate";
const result = await Bun.build({
  entrypoints: ["./src/main.ts"],
  compile: { outfile, autoloadDotenv: false, autoloadBunfig: false },
  minify: { whitespace: true, syntax: true, identifiers: false },
  sourcemap: "linked",
  bytecode: true,
  define: { "process.env.NODE_ENV": '"production"' },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile} (${(statSync(outfile).size / 1024 / 1024).toFixed(1)} MiB)`);
