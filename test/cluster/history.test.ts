/**
 * History older than a chat's capped Redis stream: a node that never mirrored
 * it gets it from a node that holds it (two or three gateways on a real
 * redis-server), so a resume from the start on that node has no gap.
 */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import type { ConfigInput } from "../../src/config.ts";
import { type Frame, isTurnEnd, startTestGateway, type TestGateway } from "../helpers.ts";
import { attachedClient } from "./clients.ts";
import { startRedis } from "./redis-server.ts";

const CHAT = "history-chat";
const STREAM_MAX = 100;

/** The seq of the oldest event the chat's Redis stream still holds. */
async function oldestInStream(url: string): Promise<number> {
  const admin = new RedisClient(url);
  await admin.connect();
  const [oldest] = (await admin.send("XRANGE", [`agentgate:{${CHAT}}:events`, "-", "+", "COUNT", "1"])) as [string, string[]][];
  admin.close();
  return Number(oldest![0].split("-")[0]);
}

const chatEvents = (frames: Frame[]) => frames.filter((f) => f.chat_id === CHAT && typeof f.seq === "number");

const attached = (gw: TestGateway, sinceSeq?: number) => attachedClient(gw.wsUrl("tcp"), CHAT, sinceSeq);

/** A cluster on a fresh redis-server whose first node writes more of the chat than its stream keeps: the node maker and every published event. */
async function outgrownStream(overrides: Partial<ConfigInput> = {}) {
  const redis = await startRedis();
  const node = () => startTestGateway({ cluster_redis_url: redis.url, cluster_stream_max_events: STREAM_MAX, echo_chunk_size: 1, echo_repeat: 10, ...overrides });
  const a = await node();
  const onA = await attached(a);
  onA.send({ type: "message", chat_id: CHAT, content: "a long enough reply to outgrow the stream" });
  const published = chatEvents(await onA.until((f) => f.chat_id === CHAT && isTurnEnd(f)));
  return { redis, node, a, published };
}

/** A client of `gw` resuming the chat from seq 0 gets exactly `expected`, then nothing more. */
async function resumesFromStart(gw: TestGateway, expected: Frame[]): Promise<void> {
  const client = await attached(gw, 0);
  const replayed: Frame[] = [];
  while (replayed.length < expected.length) replayed.push(...chatEvents([await client.next()]));
  expect(replayed).toEqual(expected);
  await client.expectQuiet();
}

test("a node that never mirrored a chat resumes it from seq 0 with every event, though the Redis stream holds only the newest", async () => {
  const { redis, node, published } = await outgrownStream();
  expect(published.length).toBeGreaterThan(3 * STREAM_MAX);
  expect(await oldestInStream(redis.url)).toBeGreaterThan(published[0]!.seq);
  await resumesFromStart(await node(), published);
}, 30_000);

test("with no other node holding the trimmed history, a resume from seq 0 gets what the stream holds, after a bounded wait", async () => {
  const { redis, node, a, published } = await outgrownStream({ cluster_history_wait_ms: 200 });
  await a.stop();
  const oldest = await oldestInStream(redis.url);
  const inStream = published.filter((f) => f.seq >= oldest);
  expect(inStream.length).toBeLessThan(published.length);
  await resumesFromStart(await node(), inStream);
}, 30_000);
