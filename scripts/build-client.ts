/**
 * Builds agentgate/client for runtimes that do not read TypeScript: dist/client/index.js
 * (readable ESM, for Node ≥ 22 and bundlers) and dist/client/index.min.js (the browser
 * bundle). The SDK imports the protocol schemas for types only, so neither file
 * contains TypeBox or anything else from the gateway.
 */
import { gzipSync } from "node:zlib";

const outdir = "dist/client";
for (const minify of [false, true]) {
  const result = await Bun.build({
    entrypoints: ["./src/client/index.ts"],
    outdir,
    target: "browser",
    format: "esm",
    minify,
    naming: minify ? "index.min.js" : "index.js",
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    process.exit(1);
  }
}
const min = await Bun.file(`${outdir}/index.min.js`).bytes();
console.log(`built ${outdir}/index.js and index.min.js (${min.length} B min, ${gzipSync(min).length} B min+gzip)`);
