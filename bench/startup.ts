/**
 * Startup benchmark (issue #16): from spawning the compiled binary to its first
 * 200 on /health (liveness: the listener is up) and on /ready (the whole gateway:
 * store, migrations, agents), median of STARTUP_RUNS (10), with a fresh data
 * directory (creating the database, applying migrations) and with an existing one
 * (the usual restart). The floor is a trivial compiled Bun binary that answers
 * /health (bench/startup-floor.ts), measured in the same run, runs alternating, so
 * the gateway's figure is a ratio to it. The port is picked free up front so
 * /health can be polled from the first millisecond (waiting for the banner would
 * add the pipe's latency). CPU time (user + sys) of the process up to the first
 * 200 is reported too: on a shared, loaded machine it varies far less than wall time.
 * Run alone: `BENCH_ONLY=startup npm run bench` (builds dist/agentgate first when missing).
 * Where the time goes: `AGENTGATE_STARTUP_TRACE=1 dist/agentgate` prints start-up marks.
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

async function answers200(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).status === 200;
  } catch {
    return false;
  }
}

interface Start {
  /** Spawn to the first 200 on /health, or on /ready for a start measured to /ready. */
  wallMs: number;
  /** CPU (user + sys) of the process up to then. */
  cpuMs: number;
}

/** Polls until the URL answers 200 (every millisecond, bounded by DEADLINE_MS); the time since `started`. */
async function until200(url: string, started: number, proc: Bun.Subprocess): Promise<number> {
  while (!(await answers200(url))) {
    if (performance.now() - started > DEADLINE_MS || proc.exitCode !== null) throw new Error(`no 200 on ${url}`);
    await Bun.sleep(1);
  }
  return performance.now() - started;
}

function cpuMsOf(proc: Bun.Subprocess): number {
  return Number(proc.resourceUsage()?.cpuTime.total ?? 0) / 1000;
}

/**
 * Starts `binary` on data directory `data` until the first 200 on `probe`, then ends it:
 * SIGKILL for a measured start (its CPU stops there), SIGTERM to leave the data dir as an orderly stop does.
 */
async function oneStart(binary: string, data: string, probe: "/health" | "/ready", stop: "SIGKILL" | "SIGTERM" = "SIGKILL"): Promise<Start> {
  const port = freePort();
  const started = performance.now();
  const proc = Bun.spawn([binary, `--port=${port}`, `--data-dir=${data}`, "--log-level=error"], {
    cwd: data,
    env: { PATH: process.env.PATH ?? "", HOME: data },
    stdout: "ignore",
    stderr: "ignore",
  });
  try {
    const wallMs = await until200(`http://127.0.0.1:${port}${probe}`, started, proc);
    proc.kill(stop);
    await proc.exited;
    return { wallMs, cpuMs: cpuMsOf(proc) };
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
  return { wallMs: performance.now() - started, cpuMs: cpuMsOf(proc) };
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
};

function compile(entry: string, outfile: string): void {
  const build = Bun.spawnSync([process.execPath, "build", "--compile", "--bytecode", "--minify-whitespace", "--minify-syntax", entry, "--outfile", outfile], { cwd: ROOT, stdout: "ignore", stderr: "inherit" });
  if (build.exitCode !== 0) throw new Error(`build of ${outfile} failed`);
}

interface Series {
  fresh: Start[];
  freshReady: Start[];
  existing: Start[];
  existingReady: Start[];
  version: Start[];
}

const stat = (starts: Start[], pick: (s: Start) => number) => median(starts.map(pick));

export async function startupBench(): Promise<void> {
  const host = join(ROOT, "dist/agentgate");
  if (BINARIES.includes(host) && !existsSync(host)) {
    const build = Bun.spawnSync([process.execPath, "run", "build.ts"], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
    if (build.exitCode !== 0) throw new Error("build failed");
  }
  const dir = mkdtempSync(join(tmpdir(), "agentgate-startup-"));
  try {
    const floor = join(dir, "floor");
    compile(join(ROOT, "bench/startup-floor.ts"), floor);
    const floorStarts: Start[] = [];
    const series = new Map<string, Series>(BINARIES.map((b) => [b, { fresh: [], freshReady: [], existing: [], existingReady: [], version: [] }]));
    // One data directory per binary that a first start created: the "existing data dir" runs reuse it.
    const existing = new Map(BINARIES.map((b) => [b, mkdtempSync(join(dir, "existing-"))]));
    for (const binary of BINARIES) await oneStart(binary, existing.get(binary)!, "/ready", "SIGTERM");
    for (let i = 0; i < RUNS; i++) {
      floorStarts.push(await oneStart(floor, mkdtempSync(join(dir, "floor-")), "/health"));
      for (const binary of BINARIES) {
        const s = series.get(binary)!;
        s.fresh.push(await oneStart(binary, mkdtempSync(join(dir, "run-")), "/health"));
        s.freshReady.push(await oneStart(binary, mkdtempSync(join(dir, "run-")), "/ready"));
        s.existing.push(await oneStart(binary, existing.get(binary)!, "/health"));
        s.existingReady.push(await oneStart(binary, existing.get(binary)!, "/ready"));
        s.version.push(await oneVersion(binary));
      }
    }
    const floorWall = stat(floorStarts, (s) => s.wallMs);
    const floorCpu = stat(floorStarts, (s) => s.cpuMs);
    const ms = (x: number) => `${x.toFixed(1)} ms`;
    const vsFloor = (x: number, f: number) => `${ms(x)} (${(x / f).toFixed(2)}× floor)`;
    console.log(`\nstartup: spawn → first 200 on /health and on /ready; medians of ${RUNS} runs each, alternating`);
    console.log(`  floor (trivial compiled Bun binary answering /health): wall ${ms(floorWall)}, cpu ${ms(floorCpu)}`);
    for (const binary of BINARIES) {
      const s = series.get(binary)!;
      console.log(`  ${binary}`);
      for (const [label, health, ready] of [["fresh data dir   ", s.fresh, s.freshReady], ["existing data dir", s.existing, s.existingReady]] as const) {
        console.log(`    ${label}  /health wall ${vsFloor(stat(health, (r) => r.wallMs), floorWall)}, cpu ${vsFloor(stat(health, (r) => r.cpuMs), floorCpu)}`);
        console.log(`    ${label}  /ready  wall ${vsFloor(stat(ready, (r) => r.wallMs), floorWall)}, cpu ${vsFloor(stat(ready, (r) => r.cpuMs), floorCpu)}`);
      }
      console.log(`    version            wall ${ms(stat(s.version, (r) => r.wallMs))}, cpu ${ms(stat(s.version, (r) => r.cpuMs))}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
