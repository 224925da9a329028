/**
 * Metadata on a real PostgreSQL shared by gateways that also share a real
 * redis-server: the sessions API answers the same on every node, renames and
 * deletes on one node reach the others, turn and media rows are written
 * behind, migrations are applied on an empty database (once, by nodes
 * starting together), and an outage of Postgres does not stop streaming.
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import type { ConfigInput } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { openDatabase } from "../../src/store/db.ts";
import { pgMigrations } from "../../src/store/migrations.gen.ts";
import { SharedMetadata } from "../../src/store/shared-metadata.ts";
import { type Frame, isTurnEnd, onCleanup, startTestGateway, tempDir, TestClient, type TestGateway } from "../helpers.ts";
import { moved, scrape } from "../metrics-scrape.ts";
import { startPostgres } from "./postgres-server.ts";
import { startRedis } from "./redis-server.ts";

const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==", "base64");
const POLL_MS = 50;
const POLL_ROUNDS = 400;

async function sharedNodes(count: number, log?: (line: string) => void, overrides: Partial<ConfigInput> = {}) {
  const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  const options = { cluster_redis_url: redis.url, store_postgres_url: pg.url, token: "t", ...overrides };
  const logger = log && createLogger("info", "text", log);
  const gateways = await Promise.all(Array.from({ length: count }, () => startTestGateway(options, logger)));
  const sql = new SQL(pg.url);
  return { gateways, pg, sql };
}

const api = async (gw: TestGateway, path: string): Promise<{ status: number; body: Frame }> => {
  const res = await gw.http("tcp", path, { headers: { authorization: "Bearer t" } });
  return { status: res.status, body: (await res.json()) as Frame };
};

const sessionKeys = async (gw: TestGateway) => ((await api(gw, "/api/sessions")).body.sessions as Frame[]).map((s) => s.key);

/** Polls until `check` holds (bounded): rows are written behind. */
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  let value = await read();
  for (let round = 0; !check(value) && round < POLL_ROUNDS; round++) {
    await Bun.sleep(POLL_MS);
    value = await read();
  }
  expect(check(value)).toBe(true);
  return value;
}

async function chatWithTurn(gw: TestGateway, extra: Frame = {}): Promise<{ client: TestClient; chatId: string }> {
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp", { token: "t" }));
  client.send({ type: "message", chat_id: ready.chat_id, content: "made on one node", ...extra });
  await client.until(isTurnEnd);
  return { client, chatId: ready.chat_id };
}

test("a chat made on node A is listed, renamed and deleted through the sessions API on node B; its turn and media rows are in Postgres", async () => {
  const { gateways, sql } = await sharedNodes(2);
  const [a, b] = gateways as [TestGateway, TestGateway];
  const { client: onA, chatId } = await chatWithTurn(a, { media: [{ data_url: `data:image/png;base64,${PNG.toString("base64")}`, name: "shot.png" }] });
  const key = `websocket:${chatId}`;

  await eventually(() => sessionKeys(b), (keys) => keys.includes(key));
  const turns = await eventually(
    () => sql`select status from turns where chat_id = ${chatId}`,
    (rows) => rows.length === 1 && rows[0].status === "done",
  );
  expect([...turns]).toEqual([{ status: "done" }]);
  expect([...(await sql`select name, mime from media where chat_id = ${chatId}`)]).toEqual([{ name: "shot.png", mime: "image/png" }]);
  const onB = (await api(b, "/api/sessions")).body.sessions.find((s: Frame) => s.key === key);
  expect(onB).toMatchObject({ key, preview: "made on one node" });

  // Renamed on B: both nodes list the new title, and A, the chat's writer, tells its clients.
  expect((await api(b, `/api/sessions/${key}/rename?title=Renamed%20on%20B`)).body).toEqual({ key, title: "Renamed on B" });
  expect(await onA.until((f) => f.event === "session_updated" && f.chat_id === chatId)).toContainEqual(expect.objectContaining({ title: "Renamed on B" }));
  for (const gw of [a, b]) expect((await api(gw, "/api/sessions")).body.sessions.find((s: Frame) => s.key === key).title).toBe("Renamed on B");

  // Deleted on B: gone from both lists, from Postgres (turn and media rows cascade), and from A's disk.
  expect((await api(b, `/api/sessions/${key}/delete`)).body).toEqual({ deleted: true });
  for (const gw of [a, b]) expect(await sessionKeys(gw)).not.toContain(key);
  expect((await api(a, `/api/sessions/${key}/messages`)).status).toBe(404);
  expect([...(await sql`select count(*)::int as n from turns where chat_id = ${chatId}`)]).toEqual([{ n: 0 }]);
  expect([...(await sql`select count(*)::int as n from media where chat_id = ${chatId}`)]).toEqual([{ n: 0 }]);
  await eventually(
    async () => existsSync(join(a.config.data_dir, "transcripts", `${chatId}.jsonl`)),
    (exists) => !exists,
  );
  await sql.close();
}, 30_000);

test("nodes started together against an empty Postgres apply its migrations once", async () => {
  const { sql } = await sharedNodes(2);
  expect([...(await sql`select count(*)::int as n from drizzle.__drizzle_migrations`)]).toEqual([{ n: pgMigrations.sql.length }]);
  const tables = await sql`select table_name from information_schema.tables where table_schema = 'public' order by table_name`;
  expect(tables.map((t: Frame) => t.table_name)).toEqual(["chat_events", "chats", "deleted_chats", "media", "turns"]);
  await sql.close();
}, 30_000);

const OUTAGES = [
  { name: "its queued writes are retried", maxPending: 100_000, chats: 1, logged: "metadata write to PostgreSQL failed; will retry" },
  { name: "past store_postgres_max_pending, the local rows are copied instead", maxPending: 10, chats: 4, logged: "this node's rows will be copied to it once it answers" },
];

test.each(OUTAGES)("a Postgres outage does not stop streaming: the bookkeeping is logged, counted, and caught up when Postgres returns ($name)", async ({ maxPending, chats, logged }) => {
  const lines: string[] = [];
  const { gateways, pg, sql } = await sharedNodes(1, (line) => lines.push(line), { store_postgres_max_pending: maxPending });
  const gw = gateways[0]!;
  await sql.close();
  const before = await scrape(gw);
  await pg.shutdown();

  const chatIds: string[] = [];
  for (let i = 0; i < chats; i++) chatIds.push((await chatWithTurn(gw)).chatId);
  // The turn streamed to its end while Postgres was away; its rows wait.
  await eventually(
    async () => moved(before, await scrape(gw), 'agentgate_storage_faults_total{kind="shared_metadata"}'),
    (n) => n > 0,
  );
  expect(lines.some((l) => l.includes(logged))).toBe(true);

  await pg.restart();
  const after = new SQL(pg.url);
  await eventually(
    () => after`select chat_id, status from turns where chat_id in ${after(chatIds)}`,
    (rows) => rows.length === chats && rows.every((r: Frame) => r.status === "done"),
  );
  expect((await sessionKeys(gw)).filter((k) => chatIds.includes(k.slice("websocket:".length))).sort()).toEqual(chatIds.map((id) => `websocket:${id}`).sort());
  expect([...(await after`select preview from chats where id in ${after(chatIds)}`)].map((r) => r.preview)).toEqual(chatIds.map(() => "made on one node"));
  expect(lines.some((l) => l.includes("metadata writes to PostgreSQL go through again"))).toBe(true);
  await after.close();
}, 30_000);

test("a chat deleted while its writer's archive write is under way keeps none of its events from before the delete (the floor counts what Redis numbered), only what came after", async () => {
  const pg = await startPostgres();
  const local = openDatabase(join(tempDir("agentgate-delete-floor-"), "local.db"), 1000);
  const shared = await SharedMetadata.open(pg.url, { failed: () => {}, recovered: () => {}, overflowed: () => {} }, { maxPending: 100, local, timeoutMs: 10_000 });
  onCleanup(() => shared.close(1000));
  const frames = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => JSON.stringify({ seq: from + i })).join("\n");
  // The chat's stream had seqs through 6 when it was deleted; nothing of it was archived yet.
  await shared.delete("floor-chat", 6);
  // The writer's round, read from the stream before the delete and more since, lands after it.
  await shared.archive.write([{ chatId: "floor-chat", firstSeq: 1, lastSeq: 10, frames: frames(1, 10) }]);
  const read = await shared.archive.read("floor-chat", 1, 10, 100);
  expect(read).toEqual({ first: 7, frames: frames(7, 10).split("\n") });
  // A run wholly before the floor is not written at all.
  await shared.archive.write([{ chatId: "floor-chat", firstSeq: 2, lastSeq: 5, frames: frames(2, 5) }]);
  expect(await shared.archive.read("floor-chat", 1, 10, 100)).toEqual(read);
}, 30_000);
