/**
 * `agentgate version`: version, commit and build date. build.ts injects the
 * commit and date with `define`; from source the commit comes from git (or
 * reads "dev") and there is no build date.
 */
import { join } from "node:path";
import pkg from "../../package.json";

declare const AGENTGATE_COMMIT: string;
declare const AGENTGATE_BUILD_DATE: string;

function sourceCommit(): string {
  try {
    const git = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: join(import.meta.dir, "..", ".."), stderr: "ignore" });
    return git.exitCode === 0 ? git.stdout.toString().trim() : "dev";
  } catch {
    return "dev";
  }
}

export function printVersion(): void {
  const built = typeof AGENTGATE_COMMIT === "string";
  const commit = built ? AGENTGATE_COMMIT : sourceCommit();
  const date = built ? AGENTGATE_BUILD_DATE : "(running from source)";
  process.stdout.write(`agentgate ${pkg.version}\ncommit ${commit}\nbuilt ${date}\nbun ${Bun.version}\n`);
}
