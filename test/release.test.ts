/**
 * The release artefact for this machine (issue #16), built by the release script
 * exactly as `npm run release` builds every target (one build here, to keep the
 * test cheap): SHA256SUMS lists it with its hash, `version` names the commit and
 * build date, and it serves until `health --ready` from the same binary says ready.
 */
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { artefactName, hostTarget } from "../scripts/release.ts";
import { BUN, REPO_ROOT, spawnServe, tempDir } from "./helpers.ts";

test("the host-platform release artefact is checksummed, versioned and serves", async () => {
  const out = tempDir("agentgate-release-");
  const build = Bun.spawn([BUN, join(REPO_ROOT, "scripts/release.ts"), `--targets=${hostTarget()}`, `--out=${out}`], { stdout: "pipe", stderr: "pipe" });
  expect(await build.exited).toBe(0);
  const binary = join(out, artefactName(hostTarget()));
  const sum = createHash("sha256").update(readFileSync(binary)).digest("hex");
  expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toBe(`${sum}  ${artefactName(hostTarget())}\n`);

  const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: REPO_ROOT }).stdout.toString().trim();
  const version = Bun.spawnSync([binary, "version"]).stdout.toString();
  expect(version).toMatch(new RegExp(`^agentgate \\d+\\.\\d+\\.\\d+\\ncommit ${head}(-dirty)?\\nbuilt \\d{4}-\\d\\d-\\d\\dT`));

  const cwd = tempDir();
  const sock = join(cwd, "gw.sock");
  const { proc } = await spawnServe([binary, "--tcp-enabled=false", `--unix-socket-path=${sock}`], cwd);
  const probe = Bun.spawn([binary, "health", "--ready", "--tcp-enabled=false", `--unix-socket-path=${sock}`], { cwd, env: { HOME: cwd }, stdout: "pipe" });
  expect(await probe.exited).toBe(0);
  expect(JSON.parse(await new Response(probe.stdout).text())).toMatchObject({ ready: true });
  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
}, 180_000);
