/**
 * Bench scenarios for the storage engine (issue #11); run.ts's header lists them
 * and their env knobs. Servers run on core 0, load generators on core 1.
 *
 * latency  added latency per delta at a fixed rate: agentgate (WebSocket agent →
 *          hub → transcript → native publish) vs a raw relay (frame in → native
 *          publish), both timed on one clock in bench/load-latency.ts
 * slow     10 healthy subscribers on a chat streaming 1 KiB deltas, without and then
 *          with a client that stops reading (a new one every BENCH_SLOW_STALL_MS):
 *          gateway RSS over the run, healthy p50/p99, slow-consumer closes
 * tail     resume of the last 100 events of chats of 10k, 100k and 1M events, built
 *          through the gateway (echo, one delta per repeat), after a restart (nothing in memory)
 * bytes    transcript bytes per streamed 4-character delta
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../src/config.ts";
import { BUN, end, fmt, median, openClient, rssBytes, type Running, type Side, spawn, startServer, WAIT_MS, WS_AGENT_FLAGS, AGENT_TOKEN } from "./proc.ts";

const knob = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const ROUNDS = knob("BENCH_ROUNDS", 3);
const LATENCY_RATE = knob("BENCH_LATENCY_RATE", 2000);
const LATENCY_S = knob("BENCH_LATENCY_S", 10);
const SLOW_S = knob("BENCH_SLOW_S", 60);
const SLOW_STALL_MS = knob("BENCH_SLOW_STALL_MS", 10_000);
const TAIL_SIZES = (process.env.BENCH_TAIL_SIZES ?? "10000,100000,1000000").split(",").map(Number);
const TAIL = 100;
const BYTES_DELTAS = 20_000;
const MiB = 2 ** 20;
/** The slow scenario measures the gateway's default slow-consumer policy. */
const DEFAULTS = resolveConfig({}).config;
const POLICY_FLAGS = [`--slow-consumer-bytes=${DEFAULTS.slow_consumer_bytes}`, `--backpressure-limit-bytes=${DEFAULTS.backpressure_limit_bytes}`];

interface LatencyLoad {
  subscribers: number;
  stallEveryMs: number;
  padBytes: number;
  seconds: number;
}

interface LatencyResult {
  deltas: number;
  p50: number;
  p99: number;
  max: number;
  gaps: number;
  stalled: number;
  /** Gateway RSS sampled once a second. */
  rss: number[];
  slowCloses: number;
}

async function latencyRun(side: Side, load: LatencyLoad, dataDir: string, flags: string[] = []): Promise<LatencyResult> {
  const { server, url } = await startServer(side, 1, dataDir, side === "agentgate" ? [...WS_AGENT_FLAGS, ...flags] : [], "server");
  const options = { url, side, rate: LATENCY_RATE, agentToken: AGENT_TOKEN, ...load };
  const gen: Running = spawn([BUN, "bench/load-latency.ts", JSON.stringify(options)], "load");
  const rss = [rssBytes(server.proc.pid)];
  const sampler = setInterval(() => rss.push(rssBytes(server.proc.pid)), 1000);
  let report: Omit<LatencyResult, "rss" | "slowCloses">;
  try {
    await gen.lines.next("latency load ready");
    report = (await gen.lines.next("latency report")) as unknown as typeof report;
  } finally {
    clearInterval(sampler);
    await Promise.all([gen, server].map(end));
  }
  const log = await new Response(server.proc.stderr).text();
  return { ...report, rss, slowCloses: log.split("closed a slow consumer").length - 1 };
}

const ms = (x: number) => `${x.toFixed(2)} ms`;

async function latencyBench(dataDir: string) {
  const load = { subscribers: 1, stallEveryMs: 0, padBytes: 0, seconds: LATENCY_S };
  const results: Record<Side, LatencyResult[]> = { raw: [], agentgate: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of ["raw", "agentgate"] as const) results[side].push(await latencyRun(side, load, join(dataDir, `latency-${side}-${round}`)));
  }
  console.log(`\nlatency per delta at ${fmt(LATENCY_RATE)} deltas/s for ${LATENCY_S} s, 1 subscriber (one clock: send stamp in the delta, read in the same process)`);
  for (const side of ["raw", "agentgate"] as const) {
    const rs = results[side];
    console.log(
      `  ${side.padEnd(9)} p50 ${ms(median(rs.map((r) => r.p50)))}  p99 ${ms(median(rs.map((r) => r.p99)))}  (runs p50: ${rs.map((r) => r.p50.toFixed(2)).join(", ")}; p99: ${rs.map((r) => r.p99.toFixed(2)).join(", ")})  gaps ${rs.reduce((n, r) => n + r.gaps, 0)}`,
    );
  }
  const added = (k: "p50" | "p99") => median(results.agentgate.map((r) => r[k])) - median(results.raw.map((r) => r[k]));
  console.log(`  added by agentgate: p50 ${ms(added("p50"))}, p99 ${ms(added("p99"))} (target: p50 ≤ 1 ms)`);
}

async function slowBench(dataDir: string) {
  const base = { subscribers: 10, padBytes: 1024, seconds: SLOW_S };
  const calm = await latencyRun("agentgate", { ...base, stallEveryMs: 0 }, join(dataDir, "slow-calm"), POLICY_FLAGS);
  const stalled = await latencyRun("agentgate", { ...base, stallEveryMs: SLOW_STALL_MS }, join(dataDir, "slow-stalled"), POLICY_FLAGS);
  console.log(`\nslow consumer: 10 healthy subscribers, ${fmt(LATENCY_RATE)} deltas/s of 1 KiB for ${SLOW_S} s; a new client that stops reading every ${SLOW_STALL_MS / 1000} s`);
  for (const [label, r] of [["without stalled", calm], ["with stalled", stalled]] as const) {
    const mib = r.rss.map((b) => b / MiB);
    console.log(
      `  ${label.padEnd(16)} healthy p50 ${ms(r.p50)} p99 ${ms(r.p99)} max ${ms(r.max)}  gaps ${r.gaps}  stalled clients ${r.stalled}, closed as slow ${r.slowCloses}` +
        `  gateway RSS MiB start ${mib[0]!.toFixed(0)} max ${Math.max(...mib).toFixed(0)} end ${mib.at(-1)!.toFixed(0)} (every 10 s: ${mib.filter((_, i) => i % 10 === 0).map((m) => m.toFixed(0)).join(" ")})`,
    );
  }
}

/** Streams one echo turn into a new chat and returns its id and last seq (the builder's lag is not measured). */
async function buildChat(url: string): Promise<{ chatId: string; latest: number }> {
  let chatId = "";
  let done: (latest: number) => void = () => {};
  const finished = new Promise<number>((r) => (done = r));
  const ws = await openClient(url, (data) => {
    if (!chatId) {
      chatId = JSON.parse(data).chat_id;
      return ws.send(JSON.stringify({ type: "message", chat_id: chatId, content: "y".repeat(100) }));
    }
    if (data.includes('"status":"idle"')) done(JSON.parse(data).seq);
  });
  const latest = await Promise.race([finished, Bun.sleep(5 * WAIT_MS).then(() => Promise.reject(new Error("chat build timed out")))]);
  ws.close();
  return { chatId, latest };
}

/** Time from sending attach {since_seq: latest − TAIL} to receiving event `latest`. */
async function tailResume(url: string, chatId: string, latest: number): Promise<number> {
  let t0 = 0;
  let received = 0;
  let done: (ms: number) => void = () => {};
  const finished = new Promise<number>((r) => (done = r));
  const ws = await openClient(url, (data) => {
    const frame = JSON.parse(data) as { event: string; seq?: number };
    if (frame.event === "ready") {
      t0 = performance.now();
      return ws.send(JSON.stringify({ type: "attach", chat_id: chatId, since_seq: latest - TAIL }));
    }
    if (frame.seq !== undefined) received++;
    if (frame.seq === latest) done(performance.now() - t0);
  });
  const took = await Promise.race([finished, Bun.sleep(WAIT_MS).then(() => Promise.reject(new Error("tail resume timed out")))]);
  ws.close();
  if (received !== TAIL) throw new Error(`tail resume got ${received} events, expected ${TAIL}`);
  return took;
}

async function tailBench(dataDir: string) {
  const chats: { size: number; chatId: string; latest: number; buildS: number }[] = [];
  for (const size of TAIL_SIZES) {
    const { server, url } = await startServer("agentgate", size, dataDir, [], "server");
    const t0 = performance.now();
    try {
      chats.push({ size, ...(await buildChat(url)), buildS: (performance.now() - t0) / 1000 });
    } finally {
      await end(server);
    }
  }
  const { server, url } = await startServer("agentgate", 1, dataDir, [], "server");
  console.log(`\ntail resume: attach {since_seq: latest − ${TAIL}} after a restart (nothing in memory), median of ${ROUNDS}`);
  try {
    for (const chat of chats) {
      const times: number[] = [];
      for (let i = 0; i < ROUNDS; i++) times.push(await tailResume(url, chat.chatId, chat.latest));
      console.log(`  ${fmt(chat.latest).padStart(10)} events  ${ms(median(times))}  (runs: ${times.map((t) => t.toFixed(2)).join(", ")}; built in ${chat.buildS.toFixed(1)} s)`);
    }
  } finally {
    await end(server);
  }
}

async function bytesBench(dataDir: string) {
  const perTurn = 1000;
  const { server, url } = await startServer("agentgate", BYTES_DELTAS / perTurn, dataDir, ["--echo-chunk-size=4"], "server");
  let chatId = "";
  let deltas = 0;
  let deltaFrameBytes = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const ws = await openClient(url, (data) => {
    if (!chatId) {
      chatId = JSON.parse(data).chat_id;
      return ws.send(JSON.stringify({ type: "message", chat_id: chatId, content: "abcd".repeat(perTurn) }));
    }
    if (data.includes('"event":"delta"')) (deltas++, (deltaFrameBytes += Buffer.byteLength(data)));
    if (data.includes('"status":"idle"')) done();
  });
  try {
    await Promise.race([finished, Bun.sleep(WAIT_MS)]);
  } finally {
    ws.close();
    await end(server);
  }
  const size = statSync(join(dataDir, "transcripts", `${chatId}.jsonl`)).size;
  console.log(`\ntranscript bytes per streamed 4-character delta (${fmt(deltas)} deltas in one turn)`);
  console.log(`  ${(size / deltas).toFixed(1)} bytes/delta in the transcript (file ${fmt(size)} B); the live delta frame is ${(deltaFrameBytes / deltas).toFixed(1)} B`);
}

/** Runs the #11 scenarios named in `only`. */
export async function storageBench(only: Set<string>, dataDir: string) {
  if (only.has("latency")) await latencyBench(dataDir);
  if (only.has("slow")) await slowBench(dataDir);
  if (only.has("tail")) await tailBench(join(dataDir, "tail"));
  if (only.has("bytes")) await bytesBench(join(dataDir, "bytes"));
}
