/**
 * Work to undo after each test (gateways, processes, temp dirs). The hook that
 * runs it is registered once for every test file by the `[test] preload` in
 * bunfig.toml (test/preload.ts): a hook registered inside a shared helper only
 * applies to the first test file that imports it.
 */
const cleanups: (() => Promise<void> | void)[] = [];

/** Registers work to undo after the current test. */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

/** Runs and forgets every registered cleanup, newest first. */
export async function runCleanups(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) await fn();
}
