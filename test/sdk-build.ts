/** Builds the SDK's JavaScript (dist/client/) once per test process, for the Node and browser tests. */
import { join } from "node:path";
import { BUN, REPO_ROOT } from "./helpers.ts";

let built: Promise<void> | undefined;

export function buildClient(): Promise<void> {
  built ??= (async () => {
    const proc = Bun.spawn([BUN, "run", "scripts/build-client.ts"], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
    if ((await proc.exited) !== 0) throw new Error(`client build failed: ${await new Response(proc.stderr).text()}`);
  })();
  return built;
}

export const CLIENT_JS = join(REPO_ROOT, "dist/client/index.js");
export const CLIENT_MIN_JS = join(REPO_ROOT, "dist/client/index.min.js");
