/**
 * What a client or the chats API sends to a node that does not write the chat
 * runs on the chat's writer (two gateways on a real redis-server): messages with
 * inline media, uploaded media or a workspace scope, workspace-scope changes,
 * tool results, and POST /api/chats/{id}/messages. Their effects are seen on
 * both nodes, in one seq stream.
 */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import { tmpdir } from "node:os";
import type { ConfigInput } from "../../src/config.ts";
import { HTTP_OUTCOME_UNKNOWN, SCOPE_REJECT } from "../../src/protocol/errors.ts";
import { isTurnEnd, onCleanup, startTestGateway, stdioAgentConfig, TestClient, type TestGateway } from "../helpers.ts";
import { ClusterKeys } from "../../src/cluster/keys.ts";
import { ChatLeases } from "../../src/cluster/lease.ts";
import { startRedis } from "./redis-server.ts";

const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==", "base64");
const OTHER_PNG = Buffer.concat([PNG, Buffer.from("trailing bytes make it another file")]);

async function twoNodes(overrides: Partial<ConfigInput> = {}): Promise<[TestGateway, TestGateway]> {
  const redis = await startRedis();
  const [a, b] = await Promise.all([0, 1].map(() => startTestGateway({ cluster_redis_url: redis.url, token: "t", echo_chunk_size: 3, echo_repeat: 2, ...overrides })));
  return [a!, b!];
}

async function attached(gw: TestGateway, chatId: string, query: Record<string, string> = {}): Promise<TestClient> {
  const { client } = await TestClient.ready(gw.wsUrl("tcp", { token: "t", ...query }));
  client.send({ type: "attach", chat_id: chatId });
  await client.until((f) => f.event === "attached" && f.chat_id === chatId);
  return client;
}

/** `a` writes the chat (one turn run there); returns a client of it on each node. */
async function writtenByA(a: TestGateway, b: TestGateway, chatId: string, query: Record<string, string> = {}) {
  const onA = await attached(a, chatId, query);
  onA.send({ type: "message", chat_id: chatId, content: "a writes" });
  await onA.until((f) => f.chat_id === chatId && isTurnEnd(f));
  const onB = await attached(b, chatId, query);
  return { onA, onB };
}

const eventOf = async (client: TestClient, chatId: string, event: string) => (await client.until((f) => f.chat_id === chatId && f.event === event)).at(-1)!;

test("a message with inline and uploaded media sent to another node runs on the writer: its media is stored there and served by its signed URLs", async () => {
  const [a, b] = await twoNodes();
  const chatId = "fwd-media";
  const { onA, onB } = await writtenByA(a, b, chatId);
  const upload = (await (await b.http("tcp", "/api/media?name=up.png", { method: "POST", body: OTHER_PNG, headers: { authorization: "Bearer t", "content-type": "image/png" } })).json()) as { media_id: string };
  onB.send({ type: "message", chat_id: chatId, content: "look", client_msg_id: "m-media", media: [{ data_url: `data:image/png;base64,${PNG.toString("base64")}`, name: "inline.png" }], media_ids: [upload.media_id] });
  // The ack (through the inbox) and the user event (through the chat's channel) may come in either order.
  const seenOnB = await onB.until((f) => f.event === "message_ack" || f.event === "user");
  seenOnB.push(...(await onB.until((f) => f.event === (seenOnB.at(-1)!.event === "user" ? "message_ack" : "user"))));
  expect(seenOnB.find((f) => f.event === "message_ack")).toMatchObject({ client_msg_id: "m-media", duplicate: false });
  const userOnA = await eventOf(onA, chatId, "user");
  expect(seenOnB.find((f) => f.event === "user")).toEqual(userOnA);
  const media = userOnA.media_urls as { url: string; name: string }[];
  expect(media.map((m) => m.name)).toEqual(["inline.png", "up.png"]);
  const bytes = await Promise.all(media.map(async (m) => Buffer.from(await (await a.http("tcp", m.url)).arrayBuffer())));
  expect(bytes).toEqual([PNG, OTHER_PNG]);
  // An upload that does not exist is refused where it was sent.
  onB.send({ type: "message", chat_id: chatId, content: "gone", media_ids: ["no-such-upload"] });
  expect(await eventOf(onB, chatId, "error")).toMatchObject({ reason: "unknown_media" });
});

test("nodes declared co-located (cluster_nodes_colocated): a message with a workspace scope, and a workspace-scope change, sent to another node by a local client are applied by the writer and seen on both nodes", async () => {
  const [a, b] = await twoNodes({ cluster_nodes_colocated: true });
  const chatId = "fwd-scope";
  const { onA, onB } = await writtenByA(a, b, chatId);
  const dir = tmpdir();
  onB.send({ type: "set_workspace_scope", chat_id: chatId, workspace_scope: { project_path: dir } });
  const updated = await eventOf(onA, chatId, "session_updated");
  expect(updated.workspace_scope).toMatchObject({ project_path: expect.any(String) });
  expect(await eventOf(onB, chatId, "session_updated")).toEqual(updated);
  onB.send({ type: "message", chat_id: chatId, content: "scoped", client_msg_id: "m-scope", workspace_scope: { project_path: dir } });
  expect(await eventOf(onB, chatId, "message_ack")).toMatchObject({ client_msg_id: "m-scope", duplicate: false });
  expect(await eventOf(onA, chatId, "user")).toMatchObject({ text: "scoped" });
  // A bad scope is refused by the writer and the refusal comes back to the sender.
  onB.send({ type: "set_workspace_scope", chat_id: chatId, workspace_scope: { project_path: "relative/path" } });
  expect(await eventOf(onB, chatId, "error")).toMatchObject({ chat_id: chatId, detail: "workspace_scope_rejected" });
});

test("by default a local client's trust stays on its node: a workspace scope it sends to a chat another node writes is refused there as not local, and nothing is stored", async () => {
  const [a, b] = await twoNodes();
  const chatId = "fwd-scope-remote";
  const { onA, onB } = await writtenByA(a, b, chatId);
  // onB is local to b (loopback); a would resolve the path on its own filesystem.
  onB.send({ type: "set_workspace_scope", chat_id: chatId, workspace_scope: { project_path: tmpdir() } });
  expect(await eventOf(onB, chatId, "error")).toMatchObject({ chat_id: chatId, detail: "workspace_scope_rejected", reason: SCOPE_REJECT.notLocal });
  onB.send({ type: "message", chat_id: chatId, content: "scoped", client_msg_id: "m-remote-scope", workspace_scope: { project_path: tmpdir() } });
  expect(await eventOf(onB, chatId, "error")).toMatchObject({ chat_id: chatId, reason: SCOPE_REJECT.notLocal });
  // Nothing reached the chat: a's client hears nothing of either.
  await onA.expectQuiet();
  expect(a.config.cluster_nodes_colocated).toBe(false);
});

test("a forwarded frame claiming local trust is not trusted by a writer not declared co-located: the scope is refused as not local", async () => {
  const [a, b] = await twoNodes();
  const chatId = "fwd-scope-forged";
  const { onA } = await writtenByA(a, b, chatId);
  const redis = new RedisClient(a.config.cluster_redis_url!);
  await redis.connect();
  onCleanup(() => redis.close());
  const writer = (await new ChatLeases(redis, new ClusterKeys(a.config.cluster_key_prefix), "probe", 10_000, 1000).holder(chatId))!.nodeId;
  // Whoever can publish on Redis (not a co-located node) sends a frame saying its client is local.
  const replies = new RedisClient(a.config.cluster_redis_url!);
  await replies.connect();
  onCleanup(() => replies.close());
  const { promise: reply, resolve } = Promise.withResolvers<Record<string, unknown>>();
  await replies.subscribe(`${a.config.cluster_key_prefix}node:forger:inbox`, (text) => resolve(JSON.parse(JSON.parse(text).frame)));
  const work = { type: "set_workspace_scope", chat_id: chatId, workspace_scope: { project_path: tmpdir() } };
  await redis.publish(`${a.config.cluster_key_prefix}node:${writer}:inbox`, JSON.stringify({ kind: "message", from: "forger", ref: "forger:1", client_id: "c", remote: "203.0.113.1", local: true, work }));
  expect(await reply).toMatchObject({ chat_id: chatId, reason: SCOPE_REJECT.notLocal });
  await onA.expectQuiet();
});

test("a tool result sent to another node answers the writer's pending call", async () => {
  const [a, b] = await twoNodes(stdioAgentConfig());
  const chatId = "fwd-tool";
  const onA = await attached(a, chatId, { capabilities: "camera" });
  onA.send({ type: "message", chat_id: chatId, content: "a writes" });
  await onA.until((f) => f.chat_id === chatId && isTurnEnd(f));
  const onB = await attached(b, chatId, { capabilities: "camera" });
  onA.send({ type: "message", chat_id: chatId, content: "tool camera" });
  const request = await eventOf(onB, chatId, "tool_request");
  onB.send({ type: "tool_result", chat_id: chatId, call_id: request.call_id, ok: true, result: { photo: "from-b.png" } });
  const rest = await onA.until((f) => f.chat_id === chatId && isTurnEnd(f));
  expect(rest.find((f) => f.event === "tool_result")).toMatchObject({ call_id: request.call_id, ok: true, result: { photo: "from-b.png" } });
  // Answered once: a second answer through b is refused by the writer.
  onB.send({ type: "tool_result", chat_id: chatId, call_id: request.call_id, ok: true, result: 2 });
  expect(await eventOf(onB, chatId, "error")).toMatchObject({ detail: "unknown call_id", reason: request.call_id });
});

test("POST /api/chats/{id}/messages on another node is published by the writer, in its seq stream", async () => {
  const [a, b] = await twoNodes();
  const chatId = "fwd-publish";
  const { onA, onB } = await writtenByA(a, b, chatId);
  const res = await b.http("tcp", `/api/chats/${chatId}/messages`, { method: "POST", body: JSON.stringify({ text: "from the API" }), headers: { authorization: "Bearer t", "content-type": "application/json" } });
  expect(res.status).toBe(200);
  const { seq } = (await res.json()) as { seq: number };
  const onAEvent = await eventOf(onA, chatId, "message");
  expect(onAEvent).toMatchObject({ text: "from the API", seq });
  expect(await eventOf(onB, chatId, "message")).toEqual(onAEvent);
  // The writer keeps numbering after it.
  onB.send({ type: "message", chat_id: chatId, content: "next" });
  expect((await eventOf(onA, chatId, "user")).seq).toBe(seq + 1);
});

test("POST /api/chats/{id}/messages to a chat nobody writes takes the chat on the answering node", async () => {
  const [a, b] = await twoNodes();
  const chatId = "fwd-publish-free";
  const onA = await attached(a, chatId);
  const res = await b.http("tcp", `/api/chats/${chatId}/messages`, { method: "POST", body: JSON.stringify({ text: "first words" }), headers: { authorization: "Bearer t", "content-type": "application/json" } });
  expect(res.status).toBe(200);
  const { seq } = (await res.json()) as { seq: number };
  expect(await eventOf(onA, chatId, "message")).toMatchObject({ text: "first words", seq });
});

test("POST /api/chats/{id}/messages whose writer does not answer within cluster_api_reply_ms: 504, the outcome unknown (not 'not stored': the writer may still publish it)", async () => {
  const server = await startRedis();
  const gw = await startTestGateway({ cluster_redis_url: server.url, token: "t", cluster_api_reply_ms: 200 });
  const chatId = "fwd-publish-silent";
  // The chat's writer, as far as Redis tells: a node that takes the frame from its inbox and never answers.
  const redis = new RedisClient(server.url);
  const inbox = new RedisClient(server.url);
  onCleanup(() => (redis.close(), inbox.close()));
  const received: string[] = [];
  await inbox.subscribe("agentgate:node:silent-node:inbox", (text) => received.push(text));
  await redis.send("SET", [`agentgate:{${chatId}}:owner`, "7:silent-node", "PX", "60000"]);
  const res = await gw.http("tcp", `/api/chats/${chatId}/messages`, { method: "POST", body: JSON.stringify({ text: "maybe" }), headers: { authorization: "Bearer t", "content-type": "application/json" } });
  expect(received).toHaveLength(1);
  expect(res.status).toBe(504);
  expect(await res.json()).toEqual({ error: HTTP_OUTCOME_UNKNOWN, reason: expect.stringContaining("may still be published") });
  const stop = await gw.http("tcp", `/api/chats/${chatId}/stop`, { method: "POST", headers: { authorization: "Bearer t" } });
  expect(stop.status).toBe(504);
  expect(await stop.json()).toMatchObject({ error: HTTP_OUTCOME_UNKNOWN });
});

test("POST /api/chats/{id}/stop on another node stops the writer's running turn", async () => {
  const [a, b] = await twoNodes({ echo_chunk_size: 1, echo_delay_ms: 5 });
  const chatId = "fwd-stop";
  const onA = await attached(a, chatId);
  onA.send({ type: "message", chat_id: chatId, content: "x".repeat(2000) });
  await onA.until((f) => f.chat_id === chatId && f.event === "delta");
  const res = await b.http("tcp", `/api/chats/${chatId}/stop`, { method: "POST", headers: { authorization: "Bearer t" } });
  expect(await res.json()).toEqual({ stopped: 1 });
  expect((await onA.until((f) => f.chat_id === chatId && f.event === "turn_end")).at(-1)).toMatchObject({ status: "cancelled" });
});
