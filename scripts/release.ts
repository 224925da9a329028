/**
 * `npm run release`: cross-compiles agentgate-{linux,darwin,windows}-{x64,arm64}
 * (bytecode on every target: Bun 1.4 emits it for all six) into dist/release/
 * with SHA256SUMS. Bun fetches each target's runtime once from the npm registry
 * (@oven/bun-<os>-<arch>) into ~/.bun/install/cache. A target that cannot be
 * built is reported and the others are still built; the exit code is then 1.
 *
 *   bun scripts/release.ts [--targets=linux-x64,darwin-arm64] [--out=DIR]
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import type { Build } from "bun";
import { buildBinary } from "../build.ts";

export const RELEASE_TARGETS = ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64", "windows-x64", "windows-arm64"] as const;
export type ReleaseTarget = (typeof RELEASE_TARGETS)[number];

/** The release name of the machine running this, e.g. linux-x64. */
export const hostTarget = (): ReleaseTarget => `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}` as ReleaseTarget;

export const artefactName = (t: ReleaseTarget) => `agentgate-${t}${t.startsWith("windows") ? ".exe" : ""}`;

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

async function release(targets: ReleaseTarget[], outDir: string): Promise<boolean> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const built: string[] = [];
  const failed: string[] = [];
  for (const target of targets) {
    const outfile = join(outDir, artefactName(target));
    try {
      await buildBinary({ outfile, target: `bun-${target}` as Build.CompileTarget, bytecode: true });
      rmSync(`${outfile.replace(/\.exe$/, "")}.map`, { force: true });
      built.push(outfile);
      console.log(`built ${basename(outfile)} (${(statSync(outfile).size / 2 ** 20).toFixed(1)} MiB)`);
    } catch (e) {
      failed.push(`${target}: ${e instanceof Error ? e.message : String(e)}`);
      console.error(`could not build ${target}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  writeFileSync(join(outDir, "SHA256SUMS"), built.map((f) => `${sha256(f)}  ${basename(f)}\n`).join(""));
  console.log(`${built.length} of ${targets.length} targets in ${outDir}, with SHA256SUMS${failed.length ? `; missing: ${failed.join("; ")}` : ""}`);
  return failed.length === 0;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { targets: { type: "string" }, out: { type: "string" } }, strict: true });
  const targets = (values.targets?.split(",") ?? [...RELEASE_TARGETS]) as ReleaseTarget[];
  const unknown = targets.filter((t) => !RELEASE_TARGETS.includes(t));
  if (unknown.length > 0) {
    console.error(`unknown target ${unknown.join(", ")}; targets: ${RELEASE_TARGETS.join(", ")}`);
    process.exit(2);
  }
  const ok = await release(targets, values.out ?? join(import.meta.dir, "..", "dist/release"));
  process.exit(ok ? 0 : 1);
}
