/**
 * Startup benchmark (issue #16): from spawning the compiled binary to its first
 * 200 on /health, median of STARTUP_RUNS (10). The port is picked free up front
 * so /health can be polled from the first millisecond (waiting for the banner
 * would add the pipe's latency). Each run gets a fresh data directory, so the
 * figure includes creating the database and applying migrations.
 * Run alone: `BENCH_ONLY=startup npm run bench` (builds dist/agentgate first when missing).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const BINARY = join(ROOT, "dist/agentgate");
const RUNS = Number(process.env.STARTUP_RUNS ?? 10);
const DEADLINE_MS = 10_000;

function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

async function healthy(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).status === 200;
  } catch {
    return false;
  }
}

/** Milliseconds from spawn to the first 200 on /health. */
async function oneStart(dir: string): Promise<number> {
  const port = freePort();
  const started = performance.now();
  const proc = Bun.spawn([BINARY, `--port=${port}`, `--data-dir=${join(dir, "data")}`, "--log-level=error"], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", HOME: dir },
    stdout: "ignore",
    stderr: "ignore",
  });
  try {
    const url = `http://127.0.0.1:${port}/health`;
    while (!(await healthy(url))) {
      if (performance.now() - started > DEADLINE_MS || proc.exitCode !== null) throw new Error(`no 200 on ${url}`);
      await Bun.sleep(1);
    }
    return performance.now() - started;
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

export async function startupBench(): Promise<void> {
  if (!existsSync(BINARY)) {
    const build = Bun.spawnSync([process.execPath, "run", "build.ts"], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
    if (build.exitCode !== 0) throw new Error("build failed");
  }
  const dir = mkdtempSync(join(tmpdir(), "agentgate-startup-"));
  try {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) times.push(await oneStart(mkdtempSync(join(dir, "run-"))));
    const sorted = [...times].sort((a, b) => a - b);
    const median = (sorted[(RUNS - 1) >> 1]! + sorted[RUNS >> 1]!) / 2;
    console.log(`\nstartup: binary spawn → first 200 on /health, ${RUNS} runs`);
    console.log(`  median ${median.toFixed(1)} ms  (min ${sorted[0]!.toFixed(1)}, max ${sorted.at(-1)!.toFixed(1)}; runs: ${times.map((t) => t.toFixed(0)).join(", ")})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
