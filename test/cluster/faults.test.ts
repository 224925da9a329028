/**
 * Faults of a clustered gateway against a real redis-server (review of #17):
 * a batch Redis refuses is never acknowledged, handling errors stay inside the
 * socket's error boundary, and a writer behind the stream gives the chat up.
 */
import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { RedisClient } from "bun";
import { join } from "node:path";
import { INTERNAL_ERROR, MESSAGE_NOT_STORED } from "../../src/protocol/errors.ts";
import { ackAndTurnEnd, BUN, type Frame, isTurnEnd, onCleanup, REPO_ROOT, spawnServe, startTestGateway, TestClient, type TestGateway, tempDir } from "../helpers.ts";
import { startRedis } from "./redis-server.ts";

const CHAT = "cluster-faults";
const key = (name: string) => `agentgate:{${CHAT}}:${name}`;

async function admin(url: string): Promise<RedisClient> {
  const redis = new RedisClient(url);
  await redis.connect();
  onCleanup(() => redis.close());
  return redis;
}

/** A clustered gateway whose client has written one turn of the chat (the gateway holds its lease). */
async function writer(overrides: Record<string, unknown> = {}): Promise<{ gw: TestGateway; client: TestClient; redis: RedisClient }> {
  const server = await startRedis();
  const gw = await startTestGateway({ cluster_redis_url: server.url, echo_chunk_size: 3, echo_repeat: 2, ...overrides });
  const { client } = await TestClient.ready(gw.wsUrl("tcp"));
  client.send({ type: "message", chat_id: CHAT, content: "first" });
  await client.until((f) => f.chat_id === CHAT && isTurnEnd(f));
  return { gw, client, redis: await admin(server.url) };
}

/** Every frame up to the pong of a ping sent now (what the client was sent before it). */
async function framesBeforePong(client: TestClient): Promise<Frame[]> {
  client.send({ type: "ping" });
  return (await client.until((f) => f.event === "pong")).slice(0, -1);
}

/** The `text` of every user event in the chat's Redis stream. */
async function storedUserTexts(redis: RedisClient): Promise<string[]> {
  const entries = (await redis.send("XRANGE", [key("events"), "-", "+"])) as [string, string[]][];
  return entries.map(([, fields]) => JSON.parse(fields[1]!) as Frame).filter((e) => e.event === "user").map((e) => e.text);
}

test("a message whose batch Redis refuses (lease taken by another node) is not acked and its id not remembered: the sender is told to send again", async () => {
  // A long lease: the renewal must not notice the stolen lease before the message is sent.
  const { client, redis } = await writer({ cluster_lease_ms: 60_000 });
  await redis.send("SET", [key("owner"), "999:other-node", "PX", "60000"]);
  client.send({ type: "message", chat_id: CHAT, content: "refused", client_msg_id: "m-2" });
  const frames = await client.until((f) => f.event === "error");
  frames.push(...(await framesBeforePong(client)));
  expect(frames.filter((f) => f.event === "message_ack")).toEqual([]);
  expect(frames).toContainEqual(expect.objectContaining({ event: "error", chat_id: CHAT, reason: MESSAGE_NOT_STORED }));
  expect(await storedUserTexts(redis)).toEqual(["first"]);

  // Once the chat is free again the resend runs (the id was not remembered).
  await redis.send("DEL", [key("owner")]);
  client.send({ type: "message", chat_id: CHAT, content: "refused", client_msg_id: "m-2" });
  const ack = (await ackAndTurnEnd(client)).find((f) => f.event === "message_ack");
  expect(ack).toEqual({ event: "message_ack", chat_id: CHAT, client_msg_id: "m-2", duplicate: false });
  expect(await storedUserTexts(redis)).toEqual(["first", "refused"]);
});

test("an error while a clustered message is handled (after its Redis round trip) is answered like the socket boundary does; the process stays up", async () => {
  const server = await startRedis();
  const cwd = tempDir("agentgate-node-");
  const sock = join(cwd, "gw.sock");
  const { proc } = await spawnServe([BUN, join(REPO_ROOT, "src/main.ts"), "serve", "--tcp-enabled=false", `--unix-socket-path=${sock}`, "--data-dir=data",
    "--websocket-requires-token=false", "--log-level=error", "--sqlite-busy-timeout-ms=10", `--cluster-redis-url=${server.url}`], cwd);
  const { client } = await TestClient.ready(`ws+unix://${sock}:/`);
  // The gateway's writes fail with SQLITE_BUSY while another connection holds the write lock.
  const db = new Database(join(cwd, "data", "agentgate.db"));
  db.exec("BEGIN EXCLUSIVE");
  client.send({ type: "message", chat_id: CHAT, content: "needs a chat row", client_msg_id: "m-1" });
  const failed = (await client.until((f) => f.event === "error")).at(-1);
  db.exec("ROLLBACK");
  db.close();
  expect(failed).toMatchObject({ detail: INTERNAL_ERROR, chat_id: CHAT });
  // Still up, and the same connection works.
  client.send({ type: "message", chat_id: CHAT, content: "again", client_msg_id: "m-1" });
  expect((await ackAndTurnEnd(client)).find((f) => f.event === "message_ack")).toMatchObject({ client_msg_id: "m-1", duplicate: false });
  expect(proc.exitCode).toBeNull();
});
