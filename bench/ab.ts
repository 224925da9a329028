/**
 * `bun bench/ab.ts CONFIG...`: paired comparison of gateway variants on a noisy
 * machine. Every variant's server runs at once (same clients, same load), and
 * their streams alternate round by round, so a slow spell of the machine hits
 * them all alike; the median and the minimum of the rounds are reported, with
 * each variant's median ratio to the first. This is how a change to the hot path
 * is judged when one run of `npm run bench` swings by ±15 % from run to run.
 *
 * CONFIG is `label[:checkout[:flags[:env]]]`:
 *   label     "raw" and "floor" run bench/raw-server.ts (floor: --durable); anything else agentgate
 *   checkout  a checkout to run agentgate from (e.g. a `git worktree` of main; relative to the
 *             current directory); default this one. Fields are split at ":", so none may hold one.
 *   flags     gateway flags, space-separated (e.g. "--transcript-fsync=never")
 *   env       extra environment, comma-separated K=V (e.g. "MIMALLOC_PURGE_DELAY=-1")
 * e.g. bun bench/ab.ts raw floor:::BENCH_FLOOR_COMMIT_BYTES=262144 main:../main this this::--transcript-fsync=never
 *
 * Env: AB_SCENARIO (chats: 1 000 chats × 1 subscriber; room: 1 chat × 100 subscribers),
 * AB_DELTAS (per stream: 1 000 for chats, 20 000 for room), AB_ROUNDS (6). Each server
 * first streams once unmeasured (cold); rounds measure the steady state: server CPU per
 * delivered event (user + sys, /proc), the whole machine's CPU per delivered event
 * (/proc/stat: clients and kernel threads too, so work a variant moves out of the server,
 * e.g. writeback from its fsync to the kernel's flusher, still counts), and page faults. Loopback only; every process
 * started here is ended here, by pid; every wait is bounded (proc.ts).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { end, machineCpu, median, openDriver, pinning, procUsage, type Running, startClients, startServer, startStream, type StreamSide } from "./proc.ts";

const ROOM = process.env.AB_SCENARIO === "room";
const DELTAS = Number(process.env.AB_DELTAS ?? (ROOM ? 20_000 : 1000));
const ROUNDS = Number(process.env.AB_ROUNDS ?? 6);
const SUBSCRIBERS = ROOM ? 100 : 1000;
const SETTLE_MS = 300;

interface Variant {
  label: string;
  side: StreamSide;
  /** Set once started (startServer and startClients end what they started when they fail). */
  server: Running | undefined;
  clients: Running[];
  driver: WebSocket | undefined;
  dataDir: string;
  cpu: number[];
  /** The whole machine's CPU per delivered event (server, clients, kernel threads). */
  machine: number[];
  faults: number[];
}

function parse(config: string): { label: string; side: StreamSide; cwd?: string; flags: string[]; env: Record<string, string> } {
  const [label = "", checkout = "", flags = "", env = ""] = config.split(":");
  const side: StreamSide = label === "raw" || label === "floor" ? label : "agentgate";
  if (checkout && !existsSync(join(checkout, "src/main.ts"))) throw new Error(`${label}: ${checkout} is not an agentgate checkout`);
  const pairs = env.split(",").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]);
  return { label, side, cwd: checkout || undefined, flags: flags.split(" ").filter(Boolean), env: Object.fromEntries(pairs) };
}

/** Starts a variant into `variants` before anything of it runs, so the caller's cleanup covers a start that fails halfway. */
async function start(config: string, variants: Variant[]): Promise<void> {
  const { label, side, cwd, flags, env } = parse(config);
  const v: Variant = { label, side, server: undefined, clients: [], driver: undefined, dataDir: mkdtempSync(join(tmpdir(), "agentgate-ab-")), cpu: [], machine: [], faults: [] };
  variants.push(v);
  const { server, url } = await startServer(side, DELTAS, v.dataDir, flags, "server", { cwd, env });
  v.server = server;
  v.clients = await startClients(url, SUBSCRIBERS, ROOM ? "room" : "own", DELTAS);
  if (ROOM) v.driver = await openDriver(url, side);
}

/** One stream on the variant's server; records server CPU per delivered event and page faults. */
async function stream(v: Variant, record: boolean): Promise<void> {
  const pid = v.server!.proc.pid;
  const before = procUsage(pid);
  const machineBefore = machineCpu();
  startStream(v.side, v.driver, v.clients, DELTAS);
  const reports = await Promise.all(v.clients.map((c) => c.lines.next("stream done")));
  const after = procUsage(pid);
  const machine = machineCpu() - machineBefore;
  const frames = reports.reduce((n, r) => n + Number(r.frames), 0);
  if (!(frames > 0)) throw new Error(`${v.label}: a stream delivered no frames`);
  if (!record) return;
  v.cpu.push(((after.cpu - before.cpu) / frames) * 1e6);
  v.machine.push((machine / frames) * 1e6);
  v.faults.push(after.faults - before.faults);
}

const configs = process.argv.slice(2);
if (configs.length === 0) {
  console.error("usage: bun bench/ab.ts CONFIG... (see the comment at the top of bench/ab.ts)");
  process.exit(2);
}
const variants: Variant[] = [];
try {
  for (const config of configs) await start(config, variants);
  for (const v of variants) await stream(v, false), await Bun.sleep(SETTLE_MS);
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate the order too, so no variant always streams right after the same one.
    for (const v of round % 2 === 0 ? variants : [...variants].reverse()) await stream(v, true), await Bun.sleep(SETTLE_MS);
  }
  console.log(`${ROOM ? "room: 1 chat × 100 subscribers" : "chats: 1 000 chats × 1 subscriber"}, ${DELTAS} deltas per stream, ${ROUNDS} rounds, ${pinning}`);
  const base = median(variants[0]!.cpu);
  for (const v of variants) {
    const mid = median(v.cpu);
    const runs = v.cpu.map((x) => x.toFixed(2)).join(" ");
    console.log(`${v.label.padEnd(12)} server CPU ${mid.toFixed(2)} µs/event (min ${Math.min(...v.cpu).toFixed(2)}; runs ${runs})  ×${(mid / base).toFixed(2)} of ${variants[0]!.label}  machine ${median(v.machine).toFixed(2)} µs/event  page faults ${Math.round(median(v.faults))}`);
  }
} finally {
  for (const v of variants) v.driver?.close();
  await Promise.all(variants.flatMap((v) => [...(v.server ? [v.server] : []), ...v.clients]).map(end));
  for (const v of variants) rmSync(v.dataDir, { recursive: true, force: true });
}
