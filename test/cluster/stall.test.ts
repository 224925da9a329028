/**
 * A Redis that stops answering without closing the connection (redis-server
 * paused with SIGSTOP): the writer stops waiting after
 * cluster_redis_command_timeout_ms, holds its events unseen (counted against
 * storage_max_held_bytes), suspects its lease, and once Redis answers again
 * the chat goes on with no gap and no duplicate.
 */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import { createLogger } from "../../src/log.ts";
import { STORAGE_ERROR, STORE_FAILED } from "../../src/protocol/errors.ts";
import { type Frame, isTurnEnd, onCleanup, startTestGateway, TestClient } from "../helpers.ts";
import { eventually } from "./evidence.ts";
import { startRedis } from "./redis-server.ts";

const CHAT = "cluster-stall";

test("a stalled Redis (SIGSTOP): appends and renewals time out, nothing Redis did not take is shown, and after SIGCONT the chat continues whole", async () => {
  const server = await startRedis();
  // Whatever happens below, redis-server is not left stopped (the cleanup kills it by pid afterwards).
  onCleanup(() => void process.kill(server.pid, "SIGCONT"));
  const logged: string[] = [];
  // Renewed every 2 s: the stall (until a renewal has timed out: 2.2 s at most) ends well before the lease (6 s after its last renewal) lapses.
  const gw = await startTestGateway(
    { cluster_redis_url: server.url, cluster_lease_ms: 6000, cluster_redis_command_timeout_ms: 200, transcript_retry_ms: 50, echo_chunk_size: 4, echo_delay_ms: 20 },
    createLogger("warn", "text", (line) => logged.push(line)),
  );
  const { client } = await TestClient.ready(gw.wsUrl("tcp"));
  const frames: Frame[] = [];
  client.send({ type: "message", chat_id: CHAT, content: "before" });
  frames.push(...(await client.until((f) => f.chat_id === CHAT && isTurnEnd(f))));
  const redis = new RedisClient(server.url);
  await redis.connect();
  onCleanup(() => redis.close());
  const lastBefore = Number(await redis.get(`agentgate:{${CHAT}}:last`));

  process.kill(server.pid, "SIGSTOP");
  client.send({ type: "message", chat_id: CHAT, content: "streamed while redis is stopped" });
  // The writer notices: its clients are told their events wait for storage, and a renewal is not answered either.
  const during = await client.until((f) => f.event === "error" && f.chat_id === CHAT);
  expect(during.at(-1)).toMatchObject({ reason: STORE_FAILED });
  await eventually(() => logged.some((l) => l.includes("did not answer a lease renewal")), "a renewal timed out");
  client.send({ type: "ping" });
  during.push(...(await client.until((f) => f.event === "pong")));
  // Nothing Redis did not take reached the client (Redis has taken nothing since it stopped).
  expect(during.filter((f) => typeof f.seq === "number")).toEqual([]);
  expect(gw.hub.view(CHAT)?.staged.length ?? 0).toBeGreaterThan(0);

  process.kill(server.pid, "SIGCONT");
  frames.push(...during, ...(await client.until((f) => f.chat_id === CHAT && isTurnEnd(f) && typeof f.seq === "number" && f.seq > lastBefore, 20_000)));
  client.send({ type: "message", chat_id: CHAT, content: "after" });
  frames.push(...(await client.until((f) => f.chat_id === CHAT && f.event === "user" && f.text === "after")));
  frames.push(...(await client.until((f) => f.chat_id === CHAT && isTurnEnd(f))));

  // One contiguous stream, the same on the client and in Redis: no gap, no duplicate.
  const seen = frames.filter((f) => f.chat_id === CHAT && typeof f.seq === "number").map((f) => f.seq as number);
  expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1));
  const entries = (await redis.send("XRANGE", [`agentgate:{${CHAT}}:events`, "-", "+"])) as [string, string[]][];
  expect(entries.map(([id]) => Number(id.split("-")[0]))).toEqual(seen);
  const texts = entries.map(([, fields]) => JSON.parse(fields[1]!) as Frame).filter((e) => e.event === "user").map((e) => e.text);
  expect(texts).toEqual(["before", "streamed while redis is stopped", "after"]);
}, 60_000);

test("while Redis is stalled, what waits for it is capped by storage_max_held_bytes: events past the cap are refused, and the stream stays whole", async () => {
  const server = await startRedis();
  onCleanup(() => void process.kill(server.pid, "SIGCONT"));
  const logged: string[] = [];
  // One turn of 400 deltas of 4000 characters, 5 ms or more apart: about 1.6 MB, past the smallest cap (1 MiB) after
  // some 260 deltas, and still streaming (its end admitted) well after Redis is back.
  const gw = await startTestGateway(
    { cluster_redis_url: server.url, cluster_lease_ms: 6000, cluster_redis_command_timeout_ms: 200, transcript_retry_ms: 50, storage_max_held_bytes: 1024 * 1024, echo_chunk_size: 4000, echo_repeat: 400, echo_delay_ms: 5 },
    createLogger("warn", "text", (line) => logged.push(line)),
  );
  const { client } = await TestClient.ready(gw.wsUrl("tcp"));
  const frames: Frame[] = [];
  client.send({ type: "message", chat_id: CHAT, content: "x" });
  frames.push(...(await client.until((f) => f.chat_id === CHAT && isTurnEnd(f))));
  process.kill(server.pid, "SIGSTOP");
  client.send({ type: "message", chat_id: CHAT, content: "y".repeat(4000) });
  await eventually(() => logged.some((l) => l.includes("too much is waiting")), "events refused past the held cap");
  const during = await client.until((f) => f.event === "error" && f.chat_id === CHAT);
  expect(during.filter((f) => typeof f.seq === "number")).toEqual([]);

  process.kill(server.pid, "SIGCONT");
  // The held events go out (the turn's end among them once the cap left room), then the chat takes messages again.
  frames.push(...during, ...(await client.until((f) => f.chat_id === CHAT && isTurnEnd(f), 20_000)));
  client.send({ type: "message", chat_id: CHAT, content: "z" });
  frames.push(...(await client.until((f) => f.chat_id === CHAT && isTurnEnd(f), 20_000)));
  expect(frames.filter((f) => f.event === "user").map((f) => f.text.slice(0, 1))).toEqual(["x", "y", "z"]);
  const seen = frames.filter((f) => f.chat_id === CHAT && typeof f.seq === "number").map((f) => f.seq as number);
  expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1));
  const redis = new RedisClient(server.url);
  await redis.connect();
  onCleanup(() => redis.close());
  const entries = (await redis.send("XRANGE", [`agentgate:{${CHAT}}:events`, "-", "+"])) as [string, string[]][];
  expect(entries.map(([id]) => Number(id.split("-")[0]))).toEqual(seen);
}, 60_000);

test("a stalled Redis (SIGSTOP) is noticed by every wait on it, not only appends and renewals: a message to a chat whose writer must be asked, and an attach that must read the chat's stream, are answered storage_error within cluster_redis_command_timeout_ms", async () => {
  const server = await startRedis();
  onCleanup(() => void process.kill(server.pid, "SIGCONT"));
  const gw = await startTestGateway({ cluster_redis_url: server.url, cluster_redis_command_timeout_ms: 200 }, createLogger("error", "text", () => {}));
  const { client } = await TestClient.ready(gw.wsUrl("tcp"));
  process.kill(server.pid, "SIGSTOP");
  // Neither chat is held here: who writes it (a lease lookup, a claim) and what it holds (the stream) are Redis's to say.
  client.send({ type: "message", chat_id: "stalled-message", content: "who writes this?" });
  expect((await client.until((f) => f.event === "error" && f.chat_id === "stalled-message", 10_000)).at(-1)).toMatchObject({ reason: STORE_FAILED });
  client.send({ type: "attach", chat_id: "stalled-attach" });
  expect((await client.until((f) => f.event === "error" && f.chat_id === "stalled-attach", 10_000)).at(-1)).toMatchObject({ reason: STORE_FAILED });
  process.kill(server.pid, "SIGCONT");
  // Redis back: the same chat takes messages.
  client.send({ type: "message", chat_id: "stalled-message", content: "again" });
  await client.until((f) => f.chat_id === "stalled-message" && isTurnEnd(f), 15_000);
});

test("a stalled Redis (SIGSTOP) while the chats API asks who writes a chat is answered 503 storage_error, not 500", async () => {
  const server = await startRedis();
  onCleanup(() => void process.kill(server.pid, "SIGCONT"));
  const gw = await startTestGateway({ token: "t", cluster_redis_url: server.url, cluster_redis_command_timeout_ms: 200 }, createLogger("error", "text", () => {}));
  const post = (path: string, body: unknown) =>
    gw.http("tcp", path, { method: "POST", headers: { authorization: "Bearer t", "content-type": "application/json" }, body: JSON.stringify(body) });
  process.kill(server.pid, "SIGSTOP");
  const published = await post("/api/chats/stalled-api/messages", { text: "who writes this?" });
  expect(published.status).toBe(503);
  expect(await published.json()).toMatchObject({ error: STORAGE_ERROR });
  expect((await post("/api/chats/stalled-api/stop", {})).status).toBe(503);
  process.kill(server.pid, "SIGCONT");
});
