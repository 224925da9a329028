/**
 * Process plumbing shared by the bench scenarios: spawning servers and load
 * generators (optionally pinned to a core with taskset), reading their JSON-line
 * reports, CPU and RSS from /proc, and ending them by pid. Every wait is bounded.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

export const BUN = process.execPath;
export const ROOT = join(import.meta.dir, "..");
export const EXTRA_FLAGS = (process.env.BENCH_FLAGS ?? "").split(" ").filter(Boolean);
export const WAIT_MS = 120_000;
const CLK_TCK = 100;

export type Side = "raw" | "agentgate";
/** The floor of a durable gateway (bench/raw-server.ts --durable), run beside the two sides when BENCH_FLOOR=1. */
export type StreamSide = Side | "floor";

export interface Running {
  proc: Subprocess<"pipe", "pipe", "pipe">;
  lines: LineReader;
}

export class LineReader {
  #buffered: object[] = [];
  #wake: (() => void) | undefined;
  constructor(stream: ReadableStream<Uint8Array>) {
    void (async () => {
      let rest = "";
      for await (const chunk of stream) {
        rest += new TextDecoder().decode(chunk);
        const parts = rest.split("\n");
        rest = parts.pop()!;
        for (const p of parts) if (p.trim()) this.#buffered.push(p.startsWith("{") ? JSON.parse(p) : { line: p });
        this.#wake?.();
      }
    })();
  }
  async next(what: string): Promise<Record<string, unknown>> {
    const deadline = Date.now() + WAIT_MS;
    while (this.#buffered.length === 0) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.#wake = r;
        setTimeout(r, 1000);
      });
    }
    const value = this.#buffered.shift() as Record<string, unknown>;
    if ("error" in value) throw new Error(`${what}: ${value.error}`);
    return value;
  }
}

/**
 * Cores for the two sides of a measurement (BENCH_PIN=0 turns pinning off): the
 * server on one, load generators on the other, so CPU per event measures the
 * server's own work rather than the two sides competing for both cores.
 */
export type Core = "server" | "load" | "any";
const PIN = process.env.BENCH_PIN !== "0" && Bun.which("taskset") !== null;
const CORE: Record<Core, string | undefined> = { server: "0", load: "1", any: undefined };
export const pinning = PIN ? "server on core 0, load generators on core 1 (taskset)" : "unpinned";

/** Where a process runs: another checkout (an older revision, for bench/ab.ts) and extra environment. */
export interface Placement {
  cwd?: string;
  env?: Record<string, string>;
}

export function spawn(cmd: string[], core: Core = "any", placement: Placement = {}): Running {
  const cpu = PIN ? CORE[core] : undefined;
  const env = { ...process.env, ...placement.env };
  const proc = Bun.spawn(cpu === undefined ? cmd : ["taskset", "-c", cpu, ...cmd], { cwd: placement.cwd ?? ROOT, env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  return { proc, lines: new LineReader(proc.stdout) };
}

/** SIGTERM first (the gateway shuts down cleanly and can write a profile), SIGKILL if it lingers. */
export async function end(r: Running) {
  if (r.proc.exitCode !== null) return;
  r.proc.kill("SIGTERM");
  await Promise.race([r.proc.exited, Bun.sleep(3000)]);
  if (r.proc.exitCode === null) r.proc.kill("SIGKILL");
}

export interface ProcUsage {
  /** utime + stime, in seconds. */
  cpu: number;
  /** stime alone: socket sends, file writes, page faults. */
  sys: number;
  /** Minor page faults: high counts mean the allocator keeps handing memory back and touching it again. */
  faults: number;
}

/** CPU time and page faults of a process we started, from /proc/<pid>/stat. */
export function procUsage(pid: number): ProcUsage {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const sys = Number(fields[12]) / CLK_TCK;
  return { cpu: Number(fields[11]) / CLK_TCK + sys, sys, faults: Number(fields[7]) };
}

/**
 * CPU seconds the whole machine has been busy (user, nice, system, irq, softirq from
 * /proc/stat; idle, iowait and a hypervisor's steal left out): what a change costs
 * wherever it runs, e.g. writeback moved from the server's fsync to the kernel's
 * flusher threads, which the server's own CPU would not show.
 */
export function machineCpu(): number {
  const [user, nice, system, , , irq, softirq] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq!) / CLK_TCK;
}

/**
 * CPU seconds a process we started spent in JSC's JIT compiler threads (JITWorker):
 * optimizing a hot function is a one-off cost (larger for a deep chain of hot calls,
 * each optimized alone and again inlined into its callers), paid in full by a short run.
 */
export function jitCpu(pid: number): number {
  let seconds = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      if (!stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")).startsWith("JITWorker")) continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      seconds += (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return seconds;
}

export function rssBytes(pid: number): number {
  const kb = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)![1];
  return Number(kb) * 1024;
}

export function peakRssBytes(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmHWM:\s+(\d+)/)![1]) * 1024;
}

/**
 * Throughput scenarios drive the gateway faster than the load generators read (they
 * are the bottleneck by design), so by default the bench lets a client lag by up to
 * 256 MiB before the slow-consumer policy closes it; the slow scenario passes the defaults.
 */
const MiB = 2 ** 20;
const LAGGING_CLIENTS_FLAGS = [`--slow-consumer-bytes=${256 * MiB}`, `--backpressure-limit-bytes=${512 * MiB}`];

/** The load generators' processes, and the text every delta carries (100 B). */
export const CLIENT_PROCS = 2;
export const TEXT = "x".repeat(100);

/** Starts the load-generating clients (bench/client.ts) on the load core, `total` sockets across CLIENT_PROCS processes. */
export async function startClients(url: string, total: number, mode: string, expected: number): Promise<Running[]> {
  const each = Math.ceil(total / CLIENT_PROCS);
  const clients = Array.from({ length: CLIENT_PROCS }, () => spawn([BUN, "bench/client.ts", url, String(each), mode, String(expected), TEXT], "load"));
  return endedUnless(clients, async () => {
    for (const c of clients) await c.lines.next("clients ready");
    return clients;
  });
}

/** The socket that starts room streams (a chat message for agentgate, a command for the raw relay), once agentgate said `ready`; bounded by WAIT_MS. */
export function openDriver(url: string, side: StreamSide): Promise<WebSocket> {
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => settle(new Error("driver timed out")), WAIT_MS);
    const settle = (error?: Error) => {
      clearTimeout(timer);
      if (!error) return resolve(ws);
      ws.close();
      reject(error);
    };
    ws.addEventListener("error", () => settle(new Error("driver failed")));
    ws.addEventListener("close", () => settle(new Error("driver closed")));
    ws.addEventListener(side === "agentgate" ? "message" : "open", () => settle(), { once: true });
  });
}

/** Starts a room stream (a chat message to agentgate, a command to the raw relay and the floor) or, without a driver, every client's own stream. */
export function startStream(side: StreamSide, driver: WebSocket | undefined, clients: Running[], perSocket: number, content = TEXT): void {
  if (driver) driver.send(side === "agentgate" ? JSON.stringify({ type: "message", chat_id: "bench", content }) : `room ${perSocket} ${TEXT}`);
  else for (const c of clients) c.proc.stdin.write("go\n"), c.proc.stdin.flush();
}

/** `placement.cwd` runs agentgate from another checkout; the raw relay and the floor always come from this one. */
export async function startServer(side: StreamSide, echoRepeat: number, dataDir: string, flags: string[] = [], core: Core = "any", placement: Placement = {}): Promise<{ server: Running; url: string }> {
  if (side !== "agentgate") {
    if (side === "floor") mkdirSync(dataDir, { recursive: true });
    const server = spawn([BUN, "bench/raw-server.ts", ...(side === "floor" ? [`--durable=${join(dataDir, "floor.log")}`] : [])], core, { env: placement.env });
    return endedUnless(server, async () => ({ server, url: `ws://127.0.0.1:${(await server.lines.next("raw server port")).line}/?raw=1` }));
  }
  const server = spawn([
    BUN, ...(process.env.BENCH_PROFILE ? ["--cpu-prof-md", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : []), "src/main.ts", "serve", "--port=0", "--websocket-requires-token=false", "--log-level=warn",
    `--data-dir=${dataDir}`, "--echo-chunk-size=100", `--echo-repeat=${echoRepeat}`, ...LAGGING_CLIENTS_FLAGS, ...flags, ...EXTRA_FLAGS,
  ], core, placement);
  return endedUnless(server, async () => {
    for (;;) {
      const { line } = await server.lines.next("agentgate banner");
      const m = String(line).match(/(ws:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) return { server, url: m[1]! };
    }
  });
}

/** What `ready` resolves to; the processes are ended first when it fails (no banner, a client's error). */
async function endedUnless<T>(processes: Running | Running[], ready: () => Promise<T>): Promise<T> {
  try {
    return await ready();
  } catch (e) {
    await Promise.all([processes].flat().map(end));
    throw e;
  }
}


/** The middle value; for an even count, the mean of the two middle values. */
export const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
};
export const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/** Opens one client on `url` and resolves with its first frame and the socket. */
export function openClient(url: string, onFrame: (data: string) => void): Promise<WebSocket> {
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    ws.addEventListener("error", () => reject(new Error("client failed")));
    ws.addEventListener("message", (e) => onFrame(e.data as string));
    ws.addEventListener("open", () => resolve(ws));
  });
}

/** A gateway whose default agent is a WebSocket agent connecting in with AGENT_TOKEN. */
export const AGENT_TOKEN = "bench-agent-token";
export const WS_AGENT_FLAGS = ["--agent=remote", `--agents=${JSON.stringify({ remote: { type: "ws" } })}`, `--agent-token=${AGENT_TOKEN}`];
