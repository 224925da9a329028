/**
 * Startup benchmark (issue #16): from spawning the compiled binary to its first
 * 200 on /health, median of STARTUP_RUNS (10). The port is picked free up front
 * so /health can be polled from the first millisecond (waiting for the banner
 * would add the pipe's latency). Each run gets a fresh data directory, so the
 * figure includes creating the database and applying migrations.
 * CPU time (user + sys) of the process up to then is reported too: on a shared,
 * loaded machine it varies far less than wall time.
 * Run alone: `BENCH_ONLY=startup npm run bench` (builds dist/agentgate first when missing).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = join(import.meta.dir, "..");
/**
 * STARTUP_BINARY=a,b measures other builds (e.g. an older commit's) for a before/after;
 * runs alternate between them so they share the machine's load.
 */
const BINARIES = (process.env.STARTUP_BINARY ?? join(ROOT, "dist/agentgate")).split(",").map((b) => resolve(b));
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

interface Start {
  wallMs: number;
  cpuMs: number;
}

/** Milliseconds from spawn to the first 200 on /health, and the CPU the process spent. */
async function oneStart(binary: string, dir: string): Promise<Start> {
  const port = freePort();
  const started = performance.now();
  const proc = Bun.spawn([binary, `--port=${port}`, `--data-dir=${join(dir, "data")}`, "--log-level=error"], {
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
    const wallMs = performance.now() - started;
    proc.kill("SIGKILL");
    await proc.exited;
    return { wallMs, cpuMs: Number(proc.resourceUsage()?.cpuTime.total ?? 0) / 1000 };
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

/** A command that does not serve (`version`), spawn to exit: what lazy loading saves. */
async function oneVersion(binary: string): Promise<Start> {
  const started = performance.now();
  const proc = Bun.spawn([binary, "version"], { stdout: "ignore", stderr: "ignore" });
  await proc.exited;
  return { wallMs: performance.now() - started, cpuMs: Number(proc.resourceUsage()?.cpuTime.total ?? 0) / 1000 };
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
};

export async function startupBench(): Promise<void> {
  const host = join(ROOT, "dist/agentgate");
  if (BINARIES.includes(host) && !existsSync(host)) {
    const build = Bun.spawnSync([process.execPath, "run", "build.ts"], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
    if (build.exitCode !== 0) throw new Error("build failed");
  }
  const dir = mkdtempSync(join(tmpdir(), "agentgate-startup-"));
  try {
    const serve = new Map<string, Start[]>(BINARIES.map((b) => [b, []]));
    const version = new Map<string, Start[]>(BINARIES.map((b) => [b, []]));
    for (let i = 0; i < RUNS; i++) {
      for (const binary of BINARIES) {
        serve.get(binary)!.push(await oneStart(binary, mkdtempSync(join(dir, "run-"))));
        version.get(binary)!.push(await oneVersion(binary));
      }
    }
    console.log(`\nstartup: binary spawn → first 200 on /health (fresh data dir), and \`version\` spawn → exit; ${RUNS} runs each`);
    for (const binary of BINARIES) {
      const wall = serve.get(binary)!.map((r) => r.wallMs);
      const cpu = (starts: Start[]) => median(starts.map((r) => r.cpuMs)).toFixed(1);
      console.log(`  ${binary}`);
      console.log(`    serve   wall median ${median(wall).toFixed(1)} ms  (min ${Math.min(...wall).toFixed(1)}; runs: ${wall.map((t) => t.toFixed(0)).join(", ")})`);
      console.log(`    serve   cpu  median ${cpu(serve.get(binary)!)} ms (user + sys of the gateway process)`);
      console.log(`    version wall median ${median(version.get(binary)!.map((r) => r.wallMs)).toFixed(1)} ms, cpu median ${cpu(version.get(binary)!)} ms`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
