/** Bounded waits for positive evidence (never a fixed sleep as synchronization) shared by the cluster tests. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** Polls until `check` holds: at most 200 times, 25 ms apart; throws naming `what` otherwise. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await Bun.sleep(25);
  }
  throw new Error(`never happened: ${what}`);
}

/** Whether a gateway's local commit log (under `dataDir`) holds `text`: written there before its Redis append starts. */
export function inCommitLog(dataDir: string, text: string): boolean {
  const dir = join(dataDir, "commit-log");
  return readdirSync(dir).some((name) => readFileSync(join(dir, name), "utf8").includes(text));
}
