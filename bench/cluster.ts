/**
 * `BENCH_ONLY=cluster npm run bench`: what sharing a chat through Redis costs
 * (issue #17). A WebSocket agent streams deltas at a fixed rate (bench/load-latency.ts:
 * send stamp and arrival on one process's clock) in three set-ups, each run
 * BENCH_ROUNDS times, medians reported:
 *   single   one gateway, no Redis (today's default);
 *   local    two gateways and a redis-server, subscribers on the writing node
 *            (the Redis append before every reveal);
 *   remote   the same, subscribers on the other node (append, PUBLISH, mirror);
 *   remote3  three gateways, subscribers spread over the two that do not write;
 *   localpg  as local, with a PostgreSQL (store_postgres_url): metadata written
 *            behind and every event archived behind (the durable history).
 * Per set-up: p50/p99 latency per delta, and server CPU per delivered delta: the
 * gateways and redis-server together, so the 2- and 3-node figures carry
 * everything the cluster adds (PostgreSQL's own CPU is not counted); and the
 * writing gateway's own CPU per delta. Every process started here is ended here, by pid.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { runCleanups } from "../test/cleanup.ts";
import { startPostgres } from "../test/cluster/postgres-server.ts";
import { launchRedis } from "../test/cluster/redis-server.ts";
import { AGENT_TOKEN, BUN, end, median, procUsage, type Running, spawn, startServer, WS_AGENT_FLAGS } from "./proc.ts";

const knob = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const ROUNDS = knob("BENCH_ROUNDS", 3);
const RATE = knob("BENCH_LATENCY_RATE", 2000);
const SECONDS = knob("BENCH_LATENCY_S", 10);
const SUBSCRIBERS = 10;

const SETUPS = ["single", "local", "remote", "remote3", "localpg"] as const;
type Setup = (typeof SETUPS)[number];
/** Gateways that only mirror the chat (its subscribers' nodes) per set-up. */
const MIRRORS: Record<Setup, number> = { single: 0, local: 0, remote: 1, remote3: 2, localpg: 0 };

interface Outcome {
  p50: number;
  p99: number;
  gaps: number;
  /** Server CPU seconds (gateways + redis-server) per delivered delta. */
  cpuPerDelta: number;
  /** The writing gateway's CPU seconds per delta. */
  writerCpuPerDelta: number;
}

async function run(setup: Setup, dir: string): Promise<Outcome> {
  mkdirSync(dir, { recursive: true });
  const redis = setup === "single" ? undefined : await launchRedis(dir);
  const pg = setup === "localpg" ? await startPostgres() : undefined;
  const flags = [...WS_AGENT_FLAGS, ...(redis ? [`--cluster-redis-url=${redis.url}`] : []), ...(pg ? [`--store-postgres-url=${pg.url}`] : [])];
  const writer = await startServer("agentgate", 1, join(dir, "a"), flags, "server");
  const others = await Promise.all(Array.from({ length: MIRRORS[setup] }, (_, i) => startServer("agentgate", 1, join(dir, `m${i}`), flags, "server")));
  const options = {
    url: writer.url,
    side: "agentgate",
    rate: RATE,
    seconds: SECONDS,
    subscribers: SUBSCRIBERS,
    stallEveryMs: 0,
    padBytes: 0,
    agentToken: AGENT_TOKEN,
    ...(others.length > 0 && { subscriberUrls: others.map((o) => o.url) }),
  };
  const gen: Running = spawn([BUN, "bench/load-latency.ts", JSON.stringify(options)], "load");
  const pids = [writer.server.proc.pid, ...others.map((o) => o.server.proc.pid), ...(redis ? [redis.pid] : [])];
  try {
    await gen.lines.next("latency load ready");
    const before = pids.map((pid) => procUsage(pid).cpu);
    const report = (await gen.lines.next("latency report")) as unknown as { deltas: number; p50: number; p99: number; gaps: number };
    const cpus = pids.map((pid, i) => procUsage(pid).cpu - before[i]!);
    const cpu = cpus.reduce((sum, c) => sum + c, 0);
    return { p50: report.p50, p99: report.p99, gaps: report.gaps, cpuPerDelta: cpu / report.deltas, writerCpuPerDelta: cpus[0]! / report.deltas };
  } finally {
    await Promise.all([gen, writer.server, ...others.map((o) => o.server)].map(end));
    await redis?.stop();
    await pg?.stop();
    await runCleanups();
  }
}

export async function clusterBench(dataDir: string): Promise<void> {
  const results: Record<Setup, Outcome[]> = { single: [], local: [], remote: [], remote3: [], localpg: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const setup of SETUPS) results[setup].push(await run(setup, join(dataDir, `${setup}-${round}`)));
  }
  console.log(`\ncluster (#17): ${SUBSCRIBERS} subscribers, ${RATE} deltas/s for ${SECONDS} s from a ws agent; server CPU = gateways + redis-server`);
  const single = median(results.single.map((r) => r.cpuPerDelta));
  for (const setup of SETUPS) {
    const rs = results[setup];
    const cpu = median(rs.map((r) => r.cpuPerDelta));
    console.log(
      `  ${setup.padEnd(8)} p50 ${median(rs.map((r) => r.p50)).toFixed(2)} ms  p99 ${median(rs.map((r) => r.p99)).toFixed(2)} ms` +
        `  server CPU ${(cpu * 1e6).toFixed(2)} µs/delivered delta (×${(cpu / single).toFixed(2)} of single)  writer CPU ${(median(rs.map((r) => r.writerCpuPerDelta)) * 1e6).toFixed(2)} µs/delta  gaps ${rs.reduce((n, r) => n + r.gaps, 0)}` +
        `  (runs p50: ${rs.map((r) => r.p50.toFixed(2)).join(", ")}; p99: ${rs.map((r) => r.p99.toFixed(2)).join(", ")})`,
    );
  }
}
