/**
 * Faults of a clustered gateway against a real redis-server (review of #17):
 * a batch Redis refuses is never acknowledged, handling errors stay inside the
 * socket's error boundary, and a writer behind the stream gives the chat up.
 */
import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { RedisClient } from "bun";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { INTERNAL_ERROR, MESSAGE_NOT_STORED } from "../../src/protocol/errors.ts";
import { ackAndTurnEnd, BUN, type Frame, isTurnEnd, onCleanup, REPO_ROOT, spawnServe, startTestGateway, TestClient, type TestGateway, tempDir } from "../helpers.ts";
import { eventually, inCommitLog } from "./evidence.ts";
import { startRedis, type TestRedis } from "./redis-server.ts";

const CHAT = "cluster-faults";
const key = (name: string, chatId = CHAT) => `agentgate:{${chatId}}:${name}`;

async function admin(url: string): Promise<RedisClient> {
  const redis = new RedisClient(url);
  await redis.connect();
  onCleanup(() => redis.close());
  return redis;
}

/** A clustered gateway whose client has written one turn of the chat (the gateway holds its lease). */
async function writer(overrides: Record<string, unknown> = {}): Promise<{ gw: TestGateway; client: TestClient; redis: RedisClient; server: TestRedis }> {
  const server = await startRedis();
  const gw = await startTestGateway({ cluster_redis_url: server.url, echo_chunk_size: 3, echo_repeat: 2, ...overrides });
  const { client } = await TestClient.ready(gw.wsUrl("tcp"));
  client.send({ type: "message", chat_id: CHAT, content: "first" });
  await client.until((f) => f.chat_id === CHAT && isTurnEnd(f));
  return { gw, client, redis: await admin(server.url), server };
}

/** Every frame up to the pong of a ping sent now (what the client was sent before it). */
async function framesBeforePong(client: TestClient): Promise<Frame[]> {
  client.send({ type: "ping" });
  return (await client.until((f) => f.event === "pong")).slice(0, -1);
}

/** The `text` of every user event in the chat's Redis stream. */
async function storedUserTexts(redis: RedisClient, chatId = CHAT): Promise<string[]> {
  const entries = (await redis.send("XRANGE", [key("events", chatId), "-", "+"])) as [string, string[]][];
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

test("one batch with a refused chat and a failed chat: the refused chat's events stay unseen when the failed one is retried", async () => {
  const { gw, client, redis } = await writer({ cluster_lease_ms: 60_000, transcript_retry_ms: 50 });
  const [refused, failing, held] = ["mixed-refused", "mixed-failing", "mixed-held"];
  for (const chatId of [refused, failing, held]) {
    client.send({ type: "message", chat_id: chatId, content: "own it" });
    await client.until((f) => f.chat_id === chatId && isTurnEnd(f));
  }
  // `refused`: another node holds the lease now; `failing`: its appends fail with a Redis error (WRONGTYPE) until repaired.
  await redis.send("SET", [key("owner", refused), "999:other-node", "PX", "60000"]);
  await redis.send("DEL", [key("last", failing)]);
  await redis.send("HSET", [key("last", failing), "broken", "1"]);
  // One batch in flight (held by the paused Redis): both messages are staged meanwhile and go in the next batch together.
  await redis.send("CLIENT", ["PAUSE", "10000", "WRITE"]);
  client.send({ type: "message", chat_id: held, content: "held batch" });
  await eventually(() => inCommitLog(join(gw.dir, "data"), "held batch"), "the held batch in the commit log");
  client.send({ type: "message", chat_id: refused, content: "never stored" });
  client.send({ type: "message", chat_id: failing, content: "stored late" });
  const staged = (chatId: string) => (gw.hub.view(chatId)?.staged.length ?? 0) > 0;
  await eventually(() => staged(refused) && staged(failing), "both messages staged");
  await redis.send("CLIENT", ["UNPAUSE"]);
  const frames = await client.until((f) => f.event === "error" && f.chat_id === failing);
  await redis.send("DEL", [key("last", failing)]);
  frames.push(...(await client.until((f) => f.chat_id === failing && isTurnEnd(f))));
  frames.push(...(await framesBeforePong(client)));
  expect(frames.filter((f) => f.chat_id === refused && typeof f.seq === "number")).toEqual([]);
  expect(frames).toContainEqual(expect.objectContaining({ event: "error", chat_id: refused, reason: "chat_owned_elsewhere" }));
  expect(frames.find((f) => f.chat_id === failing && f.event === "user")).toMatchObject({ text: "stored late" });
  expect(await storedUserTexts(redis, refused)).toEqual(["own it"]);
  expect(await storedUserTexts(redis, failing)).toEqual(["own it", "stored late"]);
});

test("a writer behind the chat's stream gives its lease up; the resend takes the chat over, catches up and numbers past the stream", async () => {
  const { client, redis } = await writer({ cluster_lease_ms: 600 });
  // Another writer appended through seq 5000 (as far as this node can tell: the stream no longer holds those events).
  await redis.send("SET", [key("last"), "5000"]);
  client.send({ type: "message", chat_id: CHAT, content: "behind", client_msg_id: "m-3" });
  const refused = await client.until((f) => f.event === "error" && f.reason === MESSAGE_NOT_STORED);
  expect(refused.filter((f) => f.event === "message_ack")).toEqual([]);
  expect(await redis.get(key("owner"))).toBeNull();
  client.send({ type: "message", chat_id: CHAT, content: "behind", client_msg_id: "m-3" });
  const frames = await ackAndTurnEnd(client);
  expect(frames.find((f) => f.event === "message_ack")).toMatchObject({ client_msg_id: "m-3", duplicate: false });
  expect(frames.find((f) => f.event === "user")).toMatchObject({ text: "behind", seq: 5001 });
  expect(await storedUserTexts(redis)).toEqual(["first", "behind"]);
});

test("while appends fail, events held for the retry count against storage_max_held_bytes: beyond it new messages are refused", async () => {
  const { gw, client, redis } = await writer({ storage_max_held_bytes: 1024 * 1024, transcript_retry_ms: 10, echo_chunk_size: 65_536, echo_repeat: 1 });
  // Every append of the chat fails with a Redis error (WRONGTYPE) until repaired.
  await redis.send("DEL", [key("last")]);
  await redis.send("HSET", [key("last"), "broken", "1"]);
  const refusal = (f: Frame) => f.event === "error" && f.reason === MESSAGE_NOT_STORED;
  let refused = false;
  // Each accepted message holds its user event and its turn's events (about 2 x 100 kB); each is written locally by a
  // retry before the next is sent, so only what waits for Redis (not the local batch) can pass the cap, within a few.
  for (let i = 0; i < 20 && !refused; i++) {
    const content = `held-${i} ${"x".repeat(100_000)}`;
    client.send({ type: "message", chat_id: CHAT, content });
    refused = (await framesBeforePong(client)).some(refusal);
    if (!refused) await eventually(() => inCommitLog(join(gw.dir, "data"), `held-${i} `), `message ${i} written locally`);
  }
  expect(refused).toBe(true);
  // Repaired: what was held is appended, and the chat takes messages again.
  await redis.send("DEL", [key("last")]);
  await eventually(async () => (await storedUserTexts(redis)).length > 1, "the held events appended");
  client.send({ type: "message", chat_id: CHAT, content: "after", client_msg_id: "m-5" });
  expect((await client.until((f) => f.event === "message_ack")).at(-1)).toMatchObject({ client_msg_id: "m-5", duplicate: false });
});

test("a message forwarded to a node that no longer writes the chat is not run there: the sender is told to send it again", async () => {
  const { client, redis, server } = await writer({ cluster_lease_ms: 60_000 });
  const writerNode = String(await redis.get(key("owner"))).split(":")[1]!;
  await redis.send("SET", [key("owner"), "999:other-node", "PX", "60000"]);
  // The sending node's inbox, as another gateway would have it.
  const replies: Frame[] = [];
  const inbox = new RedisClient(server.url);
  await inbox.connect();
  onCleanup(() => inbox.close());
  await inbox.subscribe("agentgate:node:sender-node:inbox", (text) => replies.push(JSON.parse(JSON.parse(text).frame)));
  const forwarded = { kind: "message", from: "sender-node", ref: "sender-node:0", client_id: "remote-client", remote: "127.0.0.1", local: true, work: { type: "message", chat_id: CHAT, content: "forwarded", client_msg_id: "m-6" } };
  await redis.publish(`agentgate:node:${writerNode}:inbox`, JSON.stringify(forwarded));
  await eventually(() => replies.length > 0, "a reply to the sending node");
  expect(replies[0]).toMatchObject({ event: "error", chat_id: CHAT, reason: MESSAGE_NOT_STORED });
  // Nothing ran on the old writer: its own client hears nothing of the chat.
  expect(await framesBeforePong(client)).toEqual([]);
  expect(await storedUserTexts(redis)).toEqual(["first"]);
});

test("clients attaching at once on a node that follows the chat all wait for its catch-up: every attached reports the latest seq", async () => {
  const { client, redis, server } = await writer();
  const latest = Number(await redis.get(key("last")));
  const other = await startTestGateway({ cluster_redis_url: server.url });
  const clients = await Promise.all(Array.from({ length: 3 }, async () => (await TestClient.ready(other.wsUrl("tcp"))).client));
  for (const c of clients) c.send({ type: "attach", chat_id: CHAT });
  for (const c of clients) expect((await c.until((f) => f.event === "attached")).at(-1)).toMatchObject({ chat_id: CHAT, latest_seq: latest });
  expect(latest).toBeGreaterThan(1);
  await client.expectQuiet();
});

test("a forwarded message reaching a writer that is shutting down is not run: the sender is told to send it again", async () => {
  const { gw, client, redis, server } = await writer({ echo_chunk_size: 1, echo_delay_ms: 5 });
  const writerNode = String(await redis.get(key("owner"))).split(":")[1]!;
  // A long turn keeps the shutdown waiting for it.
  client.send({ type: "message", chat_id: CHAT, content: "x".repeat(2000) });
  await client.until((f) => f.event === "delta");
  const replies: Frame[] = [];
  const inbox = new RedisClient(server.url);
  await inbox.connect();
  onCleanup(() => inbox.close());
  await inbox.subscribe("agentgate:node:sender-node:inbox", (text) => replies.push(JSON.parse(JSON.parse(text).frame)));
  const stopped = gw.stop();
  const forwarded = { kind: "message", from: "sender-node", ref: "sender-node:0", client_id: "remote-client", remote: "127.0.0.1", local: true, work: { type: "message", chat_id: CHAT, content: "late", client_msg_id: "m-7" } };
  await redis.publish(`agentgate:node:${writerNode}:inbox`, JSON.stringify(forwarded));
  await eventually(() => replies.length > 0, "a reply to the sending node");
  expect(replies[0]).toMatchObject({ event: "error", chat_id: CHAT, reason: MESSAGE_NOT_STORED });
  await stopped;
});

test("a clustered gateway whose start fails after connecting closes its Redis connections again", async () => {
  const server = await startRedis();
  const redis = await admin(server.url);
  const connections = async () => String(await redis.send("CLIENT", ["LIST"])).trim().split("\n").length;
  const before = await connections();
  // The data dir cannot be created (its parent is a file): the start fails after the cluster's Redis is connected.
  const file = join(tempDir(), "not-a-dir");
  writeFileSync(file, "");
  await expect(startTestGateway({ cluster_redis_url: server.url, data_dir: join(file, "data") })).rejects.toThrow();
  await eventually(async () => (await connections()) === before, "the failed gateway's Redis connections closed");
});

test("a forwarded message's reply route is forgotten at its final reply (ack or error): a late reply reaches nobody", async () => {
  const { client, redis, server } = await writer();
  const writerNode = String(await redis.get(key("owner"))).split(":")[1]!;
  const other = await startTestGateway({ cluster_redis_url: server.url, echo_chunk_size: 3, echo_repeat: 2 });
  const { client: sender } = await TestClient.ready(other.wsUrl("tcp"));
  sender.send({ type: "message", chat_id: CHAT, content: "via the other node", client_msg_id: "m-8" });
  await ackAndTurnEnd(sender);
  await client.until((f) => f.chat_id === CHAT && isTurnEnd(f));
  const inboxes = (await redis.send("PUBSUB", ["CHANNELS", "agentgate:node:*:inbox"])) as string[];
  const senderInbox = inboxes.find((c) => !c.includes(writerNode))!;
  const senderNode = senderInbox.split(":")[2]!;
  await redis.publish(senderInbox, JSON.stringify({ kind: "reply", ref: `${senderNode}:0`, frame: JSON.stringify({ event: "message", chat_id: CHAT, text: "late" }) }));
  // The next forwarded message's ack comes through the same inbox channel, after the late reply.
  sender.send({ type: "message", chat_id: CHAT, content: "next", client_msg_id: "m-9" });
  const frames = await ackAndTurnEnd(sender);
  expect(frames.find((f) => f.event === "message_ack")).toMatchObject({ client_msg_id: "m-9" });
  expect(frames.filter((f) => f.text === "late")).toEqual([]);
});
