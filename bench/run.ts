/**
 * `npm run bench`: the same load against a raw Bun pub/sub relay and against
 * agentgate, in one run, on 127.0.0.1 only. Prints delivered events/s for both
 * and the ratio, plus CPU seconds per side to show which side was the limit.
 *
 * Scenarios (issue #2):
 *   room   one chat × 100 subscribers, the echo agent streaming 20 000 deltas of 100 B
 *   chats  1 000 chats × 1 subscriber, all streaming at once
 *   idle   10 000 idle connections: server RSS per connection
 *   replay 100 000 events replayed to one client from a restarted gateway: time, peak RSS
 *   media  10 uploads of 20 MiB (MiB/s, server peak RSS) and 2 000 GETs of a 100 KiB image
 *          (signed URL vs raw Bun.file), each against a raw Bun handler (issue #4)
 *   agents 10 subscribers × 50 000 deltas from the echo agent, a stdio agent (the Python test
 *          fixture) and a WebSocket agent (bench/ws-agent.ts), in the same run (issue #5)
 * agentgate runs as configured by default: transcripts on, fsync at turn end.
 * Data directories live under os.tmpdir(): TMPDIR=/dev/shm takes the disk out of a
 * comparison (file creation cost on this VM's ext4 varies tenfold from run to run).
 * Each streaming scenario runs ROUNDS times, alternating sides; the median is reported.
 * Every process started here is ended here, by pid; every wait is bounded.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

const BUN = process.execPath;
const ROOT = join(import.meta.dir, "..");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** BENCH_ONLY=room,chats,idle,replay runs a subset; BENCH_FLAGS adds gateway flags (for bisecting a regression). */
const ONLY = new Set((process.env.BENCH_ONLY ?? "room,chats,idle,replay,agents,media").split(","));
const EXTRA_FLAGS = (process.env.BENCH_FLAGS ?? "").split(" ").filter(Boolean);
const CLIENT_PROCS = 2;
const TEXT = "x".repeat(100);
const WAIT_MS = 120_000;
const CLK_TCK = 100;

type Side = "raw" | "agentgate";

interface Running {
  proc: Subprocess<"pipe", "pipe", "pipe">;
  lines: LineReader;
}

class LineReader {
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

function spawn(cmd: string[]): Running {
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  return { proc, lines: new LineReader(proc.stdout) };
}

/** SIGTERM first (the gateway shuts down cleanly and can write a profile), SIGKILL if it lingers. */
async function end(r: Running) {
  if (r.proc.exitCode !== null) return;
  r.proc.kill("SIGTERM");
  await Promise.race([r.proc.exited, Bun.sleep(3000)]);
  if (r.proc.exitCode === null) r.proc.kill("SIGKILL");
}

interface ProcUsage {
  /** utime + stime, in seconds. */
  cpu: number;
  /** stime alone: socket sends, file writes, page faults. */
  sys: number;
  /** Minor page faults: high counts mean the allocator keeps handing memory back and touching it again. */
  faults: number;
}

/** CPU time and page faults of a process we started, from /proc/<pid>/stat. */
function procUsage(pid: number): ProcUsage {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const sys = Number(fields[12]) / CLK_TCK;
  return { cpu: Number(fields[11]) / CLK_TCK + sys, sys, faults: Number(fields[7]) };
}

function rssBytes(pid: number): number {
  const kb = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)![1];
  return Number(kb) * 1024;
}

function peakRssBytes(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmHWM:\s+(\d+)/)![1]) * 1024;
}

async function startServer(side: Side, echoRepeat: number, dataDir: string, flags: string[] = []): Promise<{ server: Running; url: string }> {
  if (side === "raw") {
    const server = spawn([BUN, "bench/raw-server.ts"]);
    const { line } = await server.lines.next("raw server port");
    return { server, url: `ws://127.0.0.1:${line}/?raw=1` };
  }
  const server = spawn([
    BUN, ...(process.env.BENCH_PROFILE ? ["--cpu-prof-md", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : []), "src/main.ts", "serve", "--port=0", "--websocket-requires-token=false", "--log-level=warn",
    `--data-dir=${dataDir}`, "--echo-chunk-size=100", `--echo-repeat=${echoRepeat}`, ...flags, ...EXTRA_FLAGS,
  ]);
  for (;;) {
    const { line } = await server.lines.next("agentgate banner");
    const m = String(line).match(/(ws:\/\/127\.0\.0\.1:\d+\/)/);
    if (m) return { server, url: m[1]! };
  }
}

async function startClients(url: string, total: number, mode: string, expected: number): Promise<Running[]> {
  const each = Math.ceil(total / CLIENT_PROCS);
  const clients = Array.from({ length: CLIENT_PROCS }, () => spawn([BUN, "bench/client.ts", url, String(each), mode, String(expected), TEXT]));
  for (const c of clients) await c.lines.next("clients ready");
  return clients;
}

interface StreamResult {
  eventsPerSec: number;
  gaps: number;
  serverCpu: number;
  serverSys: number;
  serverFaults: number;
  clientCpu: number;
}

interface StreamSetup {
  subscribers: number;
  perSocket: number;
  room: boolean;
  /** Extra gateway flags, and what the driver says to start the stream. */
  flags?: string[];
  content?: string;
  /** A process that must be running before the stream starts (an agent connecting in). */
  helper?: (url: string) => Running;
}

const SCENARIOS = {
  room: { subscribers: 100, perSocket: 20_000, room: true },
  chats: { subscribers: 1000, perSocket: 1000, room: false },
} satisfies Record<string, StreamSetup>;

/** Drives one streaming run and measures delivered events/s from trigger to the last client's last frame. */
async function streamRun(side: Side, setup: StreamSetup, dataDir: string): Promise<StreamResult> {
  const { room, perSocket, subscribers } = setup;
  const { server, url } = await startServer(side, perSocket, dataDir, setup.flags);
  const helper = setup.helper?.(url);
  if (helper) await helper.lines.next("helper ready");
  const clients = await startClients(url, subscribers, room ? "room" : "own", perSocket);
  let driver: WebSocket | undefined;
  try {
    const pids = [server.proc.pid, ...clients.map((c) => c.proc.pid)];
    const before = pids.map(procUsage);
    const t0 = Date.now();
    if (room) driver = await trigger(url, side, perSocket, setup.content ?? TEXT);
    else for (const c of clients) c.proc.stdin.write("go\n"), c.proc.stdin.flush();
    const reports = await Promise.all(clients.map((c) => c.lines.next("stream done")));
    const elapsed = (Math.max(...reports.map((r) => Number(r.done))) - t0) / 1000;
    const after = pids.map(procUsage);
    const cpu = after.map((u, i) => u.cpu - before[i]!.cpu);
    const frames = reports.reduce((n, r) => n + Number(r.frames), 0);
    return {
      eventsPerSec: frames / elapsed,
      gaps: reports.reduce((n, r) => n + Number(r.gaps), 0),
      serverCpu: cpu[0]!,
      serverSys: after[0]!.sys - before[0]!.sys,
      serverFaults: after[0]!.faults - before[0]!.faults,
      clientCpu: cpu.slice(1).reduce((a, b) => a + b, 0),
    };
  } finally {
    driver?.close();
    await Promise.all([server, ...clients, ...(helper ? [helper] : [])].map(end));
  }
}

/** The driver starts the room stream: a chat message for agentgate, a command for the raw relay. */
function trigger(url: string, side: Side, count: number, content: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    ws.addEventListener("error", () => reject(new Error("driver failed")));
    if (side === "raw") ws.addEventListener("open", () => (ws.send(`room ${count} ${TEXT}`), resolve(ws)));
    else ws.addEventListener("message", () => (ws.send(JSON.stringify({ type: "message", chat_id: "bench", content })), resolve(ws)), { once: true });
  });
}

async function idleRun(side: Side, dataDir: string): Promise<number> {
  const connections = 10_000;
  const { server, url } = await startServer(side, 1, dataDir);
  let clients: Running[] = [];
  try {
    await Bun.sleep(500);
    const before = rssBytes(server.proc.pid);
    clients = await startClients(url, connections, "idle", 0);
    await Bun.sleep(1000);
    return (rssBytes(server.proc.pid) - before) / connections;
  } finally {
    await Promise.all([server, ...clients].map(end));
  }
}

/** Opens one client on `url` and resolves with its first frame and the socket. */
function openClient(url: string, onFrame: (data: string) => void): Promise<WebSocket> {
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    ws.addEventListener("error", () => reject(new Error("client failed")));
    ws.addEventListener("message", (e) => onFrame(e.data as string));
    ws.addEventListener("open", () => resolve(ws));
  });
}

/** Streams `events` deltas into one chat, restarts the gateway, then times a full replay to one client. */
async function replayRun(dataDir: string, events: number) {
  let done: () => void = () => {};
  let first = await startServer("agentgate", events, dataDir);
  const finished = new Promise<void>((r) => (done = r));
  let chatId = "";
  const writer = await openClient(first.url, (data) => {
    if (!chatId) {
      chatId = JSON.parse(data).chat_id;
      writer.send(JSON.stringify({ type: "message", chat_id: chatId, content: TEXT }));
    } else if (data.includes('"status":"idle"')) done();
  });
  await Promise.race([finished, Bun.sleep(WAIT_MS)]);
  writer.close();
  first.server.proc.kill("SIGTERM");
  await first.server.proc.exited;

  first = await startServer("agentgate", 1, dataDir);
  const pid = first.server.proc.pid;
  const rssBefore = rssBytes(pid);
  let received = 0;
  let latest = Number.POSITIVE_INFINITY;
  const replayed = new Promise<void>((r) => (done = r));
  const t0 = performance.now();
  const reader = await openClient(first.url, (data) => {
    if (data.includes('"event":"ready"')) return reader.send(JSON.stringify({ type: "attach", chat_id: chatId, since_seq: 0 }));
    if (data.includes('"event":"attached"')) return void (latest = JSON.parse(data).latest_seq);
    if (++received === latest) done();
  });
  await Promise.race([replayed, Bun.sleep(WAIT_MS)]);
  const seconds = (performance.now() - t0) / 1000;
  const result = { events: received, seconds, rssBefore, peakRss: peakRssBytes(pid) };
  reader.close();
  await end(first.server);
  return result;
}

const AGENT_DELTAS = 50_000;
const AGENT_TOKEN = "bench-agent-token";
const AGENT_SETUPS: Record<string, StreamSetup> = {
  echo: { subscribers: 10, perSocket: AGENT_DELTAS, room: true, flags: ["--agent=echo"] },
  stdio: {
    subscribers: 10,
    perSocket: AGENT_DELTAS,
    room: true,
    content: `bench ${AGENT_DELTAS}`,
    flags: ["--agent=py", `--agents=${JSON.stringify({ py: { type: "stdio", command: ["python3", "test/fixtures/stdio_agent.py", "py"] } })}`],
  },
  ws: {
    subscribers: 10,
    perSocket: AGENT_DELTAS,
    room: true,
    flags: ["--agent=remote", `--agents=${JSON.stringify({ remote: { type: "ws" } })}`, `--agent-token=${AGENT_TOKEN}`],
    helper: (url) => spawn([BUN, "bench/ws-agent.ts", `${url}agent?token=${AGENT_TOKEN}`, "remote", String(AGENT_DELTAS)]),
  },
};

/** Issue #5: the same 10-subscriber stream from each kind of agent, against echo in the same run. */
async function agentsBench(dataDir: string) {
  const results: Record<string, StreamResult[]> = { echo: [], stdio: [], ws: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [kind, setup] of Object.entries(AGENT_SETUPS)) results[kind]!.push(await streamRun("agentgate", setup, join(dataDir, `${kind}-${round}`)));
  }
  console.log(`\nagents: 10 subscribers × ${fmt(AGENT_DELTAS)} deltas of 100 B`);
  const echo = median(results.echo!.map((r) => r.eventsPerSec));
  for (const [kind, rs] of Object.entries(results)) {
    const eps = median(rs.map((r) => r.eventsPerSec));
    console.log(
      `  ${kind.padEnd(6)} ${fmt(eps).padStart(10)} events/s (runs: ${rs.map((r) => fmt(r.eventsPerSec)).join(", ")})  gaps ${rs.reduce((n, r) => n + r.gaps, 0)}  ` +
        `ratio to echo ${(eps / echo).toFixed(2)}  cpu-s server ${median(rs.map((r) => r.serverCpu)).toFixed(2)} clients ${median(rs.map((r) => r.clientCpu)).toFixed(2)}`,
    );
  }
}

const MiB = 1024 * 1024;
const UPLOADS = 10;
const GETS = 2000;
const GET_CONCURRENCY = 16;

/** Bytes that pass as an mp4 (20 MiB) or png (100 KiB) by their magic bytes. */
const fakeMedia = (kind: "mp4" | "png", size: number) => {
  const bytes = new Uint8Array(size);
  bytes.set(kind === "mp4" ? [0, 0, 0, 0x18, ...new TextEncoder().encode("ftypisom")] : [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return bytes;
};

async function timedUploads(url: string, headers: Record<string, string>, body: Uint8Array): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < UPLOADS; i++) {
    const res = await fetch(url, { method: "POST", body, headers });
    if (!res.ok) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  }
  return (UPLOADS * body.length) / MiB / ((performance.now() - t0) / 1000);
}

async function timedGets(url: string): Promise<number> {
  let left = GETS;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: GET_CONCURRENCY }, async () => {
      while (left-- > 0) {
        const res = await fetch(url);
        if (!res.ok) throw new Error(`GET failed: ${res.status}`);
        await res.arrayBuffer();
      }
    }),
  );
  return GETS / ((performance.now() - t0) / 1000);
}

/** Issue #4: uploads and signed-URL serving, each against a raw Bun handler in the same run. */
async function mediaBench(dataDir: string) {
  const video = fakeMedia("mp4", 20 * MiB);
  const image = fakeMedia("png", 100 * 1024);
  const imageFile = join(dataDir, "image.png");
  await Bun.write(imageFile, image);
  const rows: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const raw = spawn([BUN, "bench/raw-media-server.ts", dataDir, imageFile]);
    const rawBase = `http://127.0.0.1:${(await raw.lines.next("raw media port")).line}`;
    const rawUpload = await timedUploads(`${rawBase}/`, { "content-type": "video/mp4" }, video);
    const rawPeak = peakRssBytes(raw.proc.pid);
    const rawGets = await timedGets(`${rawBase}/image.png`);
    await end(raw);

    const { server, url } = await startServer("agentgate", 1, join(dataDir, `gw-${round}`), ["--token=bench-token"]);
    const base = url.replace("ws://", "http://").replace(/\/$/, "");
    const auth = { authorization: "Bearer bench-token" };
    const upload = await timedUploads(`${base}/api/media`, { ...auth, "content-type": "video/mp4" }, video);
    const peak = peakRssBytes(server.proc.pid);
    const stored = (await (await fetch(`${base}/api/media`, { method: "POST", body: image, headers: { ...auth, "content-type": "image/png" } })).json()) as { url: string };
    const gets = await timedGets(`${base}${stored.url}`);
    await end(server);
    rows.push(JSON.stringify({ rawUpload, upload, rawPeak, peak, rawGets, gets }));
  }
  const runs = rows.map((r) => JSON.parse(r) as Record<string, number>);
  const m = (k: string) => median(runs.map((r) => r[k]!));
  console.log(`\nmedia: ${UPLOADS} uploads of 20 MiB; ${fmt(GETS)} GETs of 100 KiB, ${GET_CONCURRENCY} at a time`);
  console.log(`  upload   raw ${m("rawUpload").toFixed(0)} MiB/s (peak RSS ${(m("rawPeak") / MiB).toFixed(0)} MiB)  agentgate ${m("upload").toFixed(0)} MiB/s (peak RSS ${(m("peak") / MiB).toFixed(0)} MiB)  ratio ${(m("upload") / m("rawUpload")).toFixed(2)}`);
  console.log(`  serving  raw Bun.file ${fmt(m("rawGets"))} req/s  agentgate signed URL ${fmt(m("gets"))} req/s  ratio ${(m("gets") / m("rawGets")).toFixed(2)}`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), "agentgate-bench-"));
  try {
    console.log(`agentgate bench: bun ${Bun.version}, ${ROUNDS} rounds, ${CLIENT_PROCS} client processes, 127.0.0.1`);
    for (const scenario of (["room", "chats"] as const).filter((s) => ONLY.has(s))) {
      const results: Record<Side, StreamResult[]> = { raw: [], agentgate: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const side of ["raw", "agentgate"] as const) results[side].push(await streamRun(side, SCENARIOS[scenario], join(dataDir, `${scenario}-${round}`)));
      }
      const label = scenario === "room" ? "1 chat × 100 subscribers, 20 000 deltas" : "1 000 chats × 1 subscriber, 1 000 deltas each";
      console.log(`\n${label}`);
      for (const side of ["raw", "agentgate"] as const) {
        const rs = results[side];
        console.log(
          `  ${side.padEnd(9)} ${fmt(median(rs.map((r) => r.eventsPerSec))).padStart(10)} events/s  (runs: ${rs.map((r) => fmt(r.eventsPerSec)).join(", ")})` +
            `  gaps ${rs.reduce((n, r) => n + r.gaps, 0)}  cpu-s server ${median(rs.map((r) => r.serverCpu)).toFixed(2)} (sys ${median(rs.map((r) => r.serverSys)).toFixed(2)})` +
            ` clients ${median(rs.map((r) => r.clientCpu)).toFixed(2)}  server page faults ${fmt(median(rs.map((r) => r.serverFaults)))}`,
        );
      }
      const ratio = median(results.agentgate.map((r) => r.eventsPerSec)) / median(results.raw.map((r) => r.eventsPerSec));
      console.log(`  ratio agentgate/raw: ${ratio.toFixed(2)}`);
    }
    if (ONLY.has("idle")) console.log("\n10 000 idle connections");
    for (const side of (["raw", "agentgate"] as const).filter(() => ONLY.has("idle"))) {
      const perConn = await idleRun(side, join(dataDir, "idle"));
      console.log(`  ${side.padEnd(9)} ${(perConn / 1024).toFixed(2)} KiB RSS per connection`);
    }
    if (ONLY.has("agents")) await agentsBench(join(dataDir, "agents"));
    if (ONLY.has("media")) await mediaBench(join(dataDir, "media"));
    if (ONLY.has("startup")) await (await import("./startup.ts")).startupBench();
    if (!ONLY.has("replay")) return;
    const replay = await replayRun(join(dataDir, "replay"), 100_000);
    console.log(`\nreplay of ${fmt(replay.events)} events to one client (from the transcript, after a restart)`);
    console.log(
      `  ${replay.seconds.toFixed(2)} s (${fmt(replay.events / replay.seconds)} events/s); server RSS ${(replay.rssBefore / 2 ** 20).toFixed(1)} MiB before, peak ${(replay.peakRss / 2 ** 20).toFixed(1)} MiB`,
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
