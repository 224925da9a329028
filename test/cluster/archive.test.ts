/**
 * The cluster's durable history on a real PostgreSQL, with gateway processes
 * on a real redis-server: every node that held a chat killed (kill -9), a
 * fresh node with an empty data dir resumes it from seq 0 or from the middle
 * with every event once, byte for byte as clients first saw it, though the
 * chat's Redis stream keeps only its newest events; a writer killed mid-turn
 * before it archived anything leaves no gap either (the node taking over
 * archives what the stream holds). A chat deleted takes its history along.
 */
import { expect, test } from "bun:test";
import { RedisClient, SQL } from "bun";
import { join } from "node:path";
import { BUN, type Frame, isTurnEnd, onCleanup, REPO_ROOT, spawnServe, TestClient, tempDir } from "../helpers.ts";
import { startPostgres } from "./postgres-server.ts";
import { startRedis } from "./redis-server.ts";
import { STORAGE_ERROR, STORE_FAILED } from "../../src/protocol/errors.ts";

const MAIN = join(REPO_ROOT, "src/main.ts");
const CHAT = "archive-chat";
const STREAM_MAX = 100;
const POLL_MS = 50;
const POLL_ROUNDS = 400;

interface Cluster {
  redisUrl: string;
  pgUrl: string;
}

async function cluster() {
  const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  return { redisUrl: redis.url, pgUrl: pg.url, pg };
}

/** A gateway process with a fresh data dir; archive rows of 7 events at most, so a resume reads many rows over several pages. */
async function node({ redisUrl, pgUrl }: Cluster, flags: string[] = []) {
  const cwd = tempDir("agentgate-node-");
  const sock = join(cwd, "gw.sock");
  const { proc } = await spawnServe(
    [BUN, MAIN, "serve", "--tcp-enabled=false", `--unix-socket-path=${sock}`, "--data-dir=data", "--websocket-requires-token=false", "--log-level=error",
      `--cluster-redis-url=${redisUrl}`, `--store-postgres-url=${pgUrl}`, "--cluster-lease-ms=1000", `--cluster-stream-max-events=${STREAM_MAX}`,
      "--cluster-archive-interval-ms=50", "--cluster-archive-batch-events=7", "--cluster-history-wait-ms=200", "--echo-chunk-size=1", ...flags],
    cwd,
  );
  return { proc, sock, url: `ws+unix://${sock}:/` };
}

type Node = Awaited<ReturnType<typeof node>>;

async function kill(...nodes: Node[]): Promise<void> {
  for (const n of nodes) n.proc.kill("SIGKILL");
  await Promise.all(nodes.map((n) => n.proc.exited));
}

/** A client attached to the chat that also keeps every text frame as received, bytes untouched. */
async function rawClient(url: string, sinceSeq?: number): Promise<{ client: TestClient; raw: string[] }> {
  const client = await TestClient.open(url);
  const raw: string[] = [];
  client.ws.addEventListener("message", (e) => raw.push(e.data as string));
  await client.next();
  client.send({ type: "attach", chat_id: CHAT, ...(sinceSeq !== undefined && { since_seq: sinceSeq }) });
  await client.until((f) => f.event === "attached" && f.chat_id === CHAT);
  return { client, raw };
}

const seqOf = (frame: string) => (JSON.parse(frame) as Frame).seq as number | undefined;
const chatEvents = (raw: string[]) => raw.filter((f) => (JSON.parse(f) as Frame).chat_id === CHAT && seqOf(f) !== undefined);

/** Frames until one matches, bounded in time. */
async function until(client: TestClient, match: (f: Frame) => boolean, timeoutMs = 20_000): Promise<void> {
  await client.until((f) => f.chat_id === CHAT && match(f), timeoutMs);
}

/** Chat events a client got: at least through `lastSeq` (bounded wait), then nothing more. */
async function eventsThrough(client: TestClient, raw: string[], lastSeq: number): Promise<string[]> {
  await until(client, (f) => f.seq === lastSeq);
  await client.expectQuiet();
  return chatEvents(raw);
}

async function redisCall<T>(url: string, command: string, args: string[]): Promise<T> {
  const redis = new RedisClient(url);
  await redis.connect();
  try {
    return (await redis.send(command, args)) as T;
  } finally {
    redis.close();
  }
}

/** The seq of the oldest event the chat's Redis stream still holds. */
async function oldestInStream(url: string): Promise<number> {
  const [oldest] = await redisCall<[string, string[]][]>(url, "XRANGE", [`agentgate:{${CHAT}}:events`, "-", "+", "COUNT", "1"]);
  return Number(oldest![0].split("-")[0]);
}

/** Polls (bounded) until the stream has dropped seqs 1..through: the archive took them. */
async function trimmedPast(url: string, through: number): Promise<number> {
  let oldest = await oldestInStream(url);
  for (let round = 0; oldest <= through && round < POLL_ROUNDS; round++) {
    await Bun.sleep(POLL_MS);
    oldest = await oldestInStream(url);
  }
  expect(oldest).toBeGreaterThan(through);
  return oldest;
}

const consecutiveFrom1 = (events: string[]) => events.every((f, i) => seqOf(f) === i + 1);

/** Fresh nodes resume the chat, one from 0, one from the middle: exactly `published` (bytes), then quiet. */
async function freshNodesResume(c: Cluster, published: string[]): Promise<void> {
  const [fresh, fresh2] = await Promise.all([node(c), node(c)]);
  const last = seqOf(published.at(-1)!)!;
  const fromStart = await rawClient(fresh.url, 0);
  expect(await eventsThrough(fromStart.client, fromStart.raw, last)).toEqual(published);
  const middle = Math.floor(last / 2);
  const fromMiddle = await rawClient(fresh2.url, middle);
  expect(await eventsThrough(fromMiddle.client, fromMiddle.raw, last)).toEqual(published.slice(middle));
  await kill(fresh, fresh2);
}

test("every node that held a chat killed: a fresh node resumes it from seq 0 and from the middle with every event once, byte-equal, though the Redis stream trimmed most", async () => {
  const c = await cluster();
  const [a, b] = await Promise.all([node(c, ["--echo-repeat=25"]), node(c, ["--echo-repeat=25"])]);
  const onA = await rawClient(a.url);
  const onB = await rawClient(b.url);
  onA.client.send({ type: "message", chat_id: CHAT, content: "a reply long enough to outgrow the stream" });
  await until(onA.client, isTurnEnd);
  await until(onB.client, isTurnEnd);
  const published = chatEvents(onA.raw);
  expect(published.length).toBeGreaterThan(8 * STREAM_MAX);
  expect(consecutiveFrom1(published)).toBe(true);
  // What b mirrored is what a's clients saw, byte for byte.
  expect(chatEvents(onB.raw)).toEqual(published);
  const last = seqOf(published.at(-1)!)!;
  await trimmedPast(c.redisUrl, last - 2 * STREAM_MAX);

  await kill(a, b);
  await freshNodesResume(c, published);
}, 60_000);

test("kill -9 of the writer mid-turn before it archived anything: the node taking over archives what the stream holds; once it is gone too, a fresh node resumes with no gap", async () => {
  const c = await cluster();
  // a archives only once a minute: none of its events are archived when it dies, and its stream keeps them all.
  const a = await node(c, ["--echo-repeat=60", "--echo-delay-ms=2", "--cluster-archive-interval-ms=60000"]);
  const b = await node(c, ["--echo-repeat=60", "--echo-delay-ms=2"]);
  const watcher = await rawClient(b.url);
  const onA = await rawClient(a.url);
  onA.client.send({ type: "message", chat_id: CHAT, content: "a long turn, cut short" });
  let deltas = 0;
  await until(watcher.client, (f) => f.event === "delta" && ++deltas === 3 * STREAM_MAX);
  // The stream has dropped nothing the archive lacks.
  expect(await oldestInStream(c.redisUrl)).toBe(1);
  await kill(a);

  // b takes over, closes the turn, and archives a's events: the stream then drops them (whole stream nodes, so about).
  await until(watcher.client, (f) => f.event === "goal_status" && f.status === "idle");
  const published = chatEvents(watcher.raw);
  expect(consecutiveFrom1(published)).toBe(true);
  expect(published.filter((f) => (JSON.parse(f) as Frame).event === "turn_end")).toEqual([expect.stringContaining('"status":"interrupted"')]);
  await trimmedPast(c.redisUrl, STREAM_MAX);

  await kill(b);
  await freshNodesResume(c, published);
}, 60_000);

test("a chat deleted through the sessions API takes its archived history along", async () => {
  const c = await cluster();
  const a = await node(c, ["--echo-repeat=5", "--token=t"]);
  const { client } = await TestClient.ready(`${a.url}?token=t`);
  client.send({ type: "message", chat_id: CHAT, content: "soon gone" });
  await until(client, isTurnEnd);
  const sql = new SQL(c.pgUrl);
  const archived = async () => Number((await sql`select count(*)::int as n from chat_events where chat_id = ${CHAT}`)[0].n);
  for (let round = 0; (await archived()) === 0 && round < POLL_ROUNDS; round++) await Bun.sleep(POLL_MS);
  expect(await archived()).toBeGreaterThan(0);
  const sock = a.url.slice("ws+unix://".length, -":/".length);
  const api = (path: string) => fetch(`http://localhost${path}`, { method: path.endsWith("/delete") ? "DELETE" : "GET", unix: sock, headers: { authorization: "Bearer t" } });
  // The chat's row reaches PostgreSQL behind its events: listed first, then deleted.
  const listed = async () => ((await (await api("/api/sessions")).json()) as { sessions: Frame[] }).sessions.map((s) => s.key as string);
  for (let round = 0; !(await listed()).some((k) => k.endsWith(CHAT)) && round < POLL_ROUNDS; round++) await Bun.sleep(POLL_MS);
  const key = (await listed()).find((k) => k.endsWith(CHAT))!;
  expect(await (await api(`/api/sessions/${key}/delete`)).json()).toEqual({ deleted: true });
  expect(await archived()).toBe(0);
  await sql.close();
}, 60_000);

/** The chat written on a node until its stream dropped its start (archived), then that node killed: its events as published. */
async function outgrownThenKilled(c: Cluster): Promise<string[]> {
  const a = await node(c, ["--echo-repeat=10"]);
  const onA = await rawClient(a.url);
  onA.client.send({ type: "message", chat_id: CHAT, content: "a reply long enough to outgrow the stream" });
  await until(onA.client, isTurnEnd);
  const published = chatEvents(onA.raw);
  await trimmedPast(c.redisUrl, STREAM_MAX);
  await kill(a);
  return published;
}

test("PostgreSQL down while a fresh node resumes from before the stream: the client is told (no silent gap), and resumes whole once it is back", async () => {
  const c = await cluster();
  const published = await outgrownThenKilled(c);

  const fresh = await node(c);
  await c.pg.shutdown();
  const { client } = await TestClient.ready(fresh.url);
  client.send({ type: "attach", chat_id: CHAT, since_seq: 0 });
  const told = await client.until((f) => f.event === "error" || f.event === "attached");
  expect(told.at(-1)).toMatchObject({ event: "error", detail: STORAGE_ERROR, reason: STORE_FAILED, chat_id: CHAT });
  expect(told.filter((f) => typeof f.seq === "number")).toEqual([]);

  await c.pg.restart();
  const again = await rawClient(fresh.url, 0);
  expect(await eventsThrough(again.client, again.raw, seqOf(published.at(-1)!)!)).toEqual(published);
}, 60_000);

test("PostgreSQL stalled (SIGSTOP) while a fresh node resumes from before the stream: the client is told storage_error within store_postgres_timeout_ms, not left waiting", async () => {
  const c = await cluster();
  await outgrownThenKilled(c);

  const fresh = await node(c);
  // The postmaster and its backends (the fresh node's connection among them): none answers, none closes.
  const stalled = [c.pg.pid, ...(await Bun.$`ps -o pid= --ppid ${c.pg.pid}`.text()).split("\n").map(Number).filter((pid) => pid > 0)];
  const resume = () => {
    for (const pid of stalled) process.kill(pid, "SIGCONT");
  };
  onCleanup(resume);
  for (const pid of stalled) process.kill(pid, "SIGSTOP");
  const { client } = await TestClient.ready(fresh.url);
  client.send({ type: "attach", chat_id: CHAT, since_seq: 0 });
  const told = await client.until((f) => f.event === "error" || f.event === "attached", 20_000);
  expect(told.at(-1)).toMatchObject({ event: "error", detail: STORAGE_ERROR, reason: STORE_FAILED, chat_id: CHAT });
  expect(told.filter((f) => typeof f.seq === "number")).toEqual([]);
  resume();
}, 60_000);

/** GET /api/sessions/websocket:CHAT/<path> on a node (token t), polled (bounded) until it answers 200: the chat row reaches PostgreSQL behind. */
async function sessionsApi(n: Node, path: string): Promise<unknown> {
  const get = () => fetch(`http://localhost/api/sessions/websocket:${CHAT}/${path}`, { unix: n.sock, headers: { authorization: "Bearer t" } });
  let res = await get();
  for (let round = 0; res.status === 404 && round < POLL_ROUNDS; round++) {
    await Bun.sleep(POLL_MS);
    res = await get();
  }
  expect(res.status).toBe(200);
  return res.json();
}

test("the sessions API on a node that never followed a chat answers its messages and thread as the writer does (gathered from the stream and the durable history)", async () => {
  const c = await cluster();
  const [a, b] = await Promise.all([node(c, ["--echo-repeat=10", "--token=t"]), node(c, ["--token=t"])]);
  const onA = await rawClient(`${a.url}?token=t`);
  onA.client.send({ type: "message", chat_id: CHAT, content: "a reply long enough to outgrow the stream" });
  await until(onA.client, isTurnEnd);
  await trimmedPast(c.redisUrl, STREAM_MAX);
  // The thread stamps its messages with the time of the request (createdAt): everything else must match.
  const unstamped = (answer: unknown) => JSON.stringify(answer).replace(/"createdAt":\d+/g, "");
  for (const path of ["messages", "webui-thread"]) {
    const fromA = unstamped(await sessionsApi(a, path));
    expect(fromA).toContain("a reply long enough to outgrow the stream".repeat(10));
    expect(unstamped(await sessionsApi(b, path))).toBe(fromA);
  }
}, 60_000);
