/**
 * Builds the single executable dist/agentgate: the app bundled with the Bun
 * runtime, bytecode-compiled for fast start. It must not pick up a `.env` or
 * `bunfig.toml` from whatever directory it is later run in.
 * `buildBinary` is shared with scripts/release.ts, which cross-compiles.
 */
import { statSync } from "node:fs";
import type { Build } from "bun";
import { configCatalog } from "./src/config.ts";
import { bundleWebUi } from "./src/web/bundle.ts";

/**
 * What `agentgate version` reports: the commit built (with -dirty for uncommitted
 * changes), or AGENTGATE_COMMIT when set (a Docker build has no .git), and when.
 */
function commit(): string {
  if (process.env.AGENTGATE_COMMIT) return process.env.AGENTGATE_COMMIT;
  const git = (...args: string[]) => Bun.spawnSync(["git", ...args], { cwd: import.meta.dir, stderr: "ignore" });
  const head = git("rev-parse", "--short=12", "HEAD");
  if (head.exitCode !== 0) return "dev";
  const dirty = git("status", "--porcelain", "--untracked-files=no").stdout.toString().trim() !== "";
  return head.stdout.toString().trim() + (dirty ? "-dirty" : "");
}

export interface BuildTarget {
  outfile: string;
  /** Bun's compile target (bun-linux-arm64, …); undefined: this machine. */
  target?: Build.CompileTarget;
  bytecode: boolean;
}

export async function buildBinary({ outfile, target, bytecode }: BuildTarget): Promise<void> {
  const result = await Bun.build({
    entrypoints: [`${import.meta.dir}/src/main.ts`],
    compile: { outfile, ...(target && { target }), autoloadDotenv: false, autoloadBunfig: false },
    minify: { whitespace: true, syntax: true, identifiers: false },
    sourcemap: "linked",
    bytecode,
    define: {
      "process.env.NODE_ENV": '"production"',
      AGENTGATE_COMMIT: JSON.stringify(commit()),
      AGENTGATE_BUILD_DATE: JSON.stringify(new Date().toISOString()),
      // The chat page at / (web/), embedded so the executable needs no files next to it.
      AGENTGATE_WEB_BUNDLE: JSON.stringify(await bundleWebUi()),
      // Every option's flag, help and default, and the checks start-up may apply without zod (src/config-rules.ts).
      AGENTGATE_CONFIG_CATALOG: JSON.stringify(configCatalog()),
    },
  });
  if (!result.success) throw new AggregateError(result.logs, `build of ${outfile} failed`);
}

if (import.meta.main) {
  const outfile = "dist/agentgate";
  await buildBinary({ outfile, bytecode: true });
  console.log(`built ${outfile} (${(statSync(outfile).size / 1024 / 1024).toFixed(1)} MiB)`);
}
