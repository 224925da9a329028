/**
 * Bun's Redis client gives up after `cluster_redis_max_retries` failed
 * reconnects and never tries again by itself. Two gateways lose their real
 * redis-server for longer than that (killed by pid, restarted on the same port
 * from its dump): both open their connections again, subscribe again and catch
 * up, and a turn written meanwhile reaches the other node's client with no gap
 * and no duplicate.
 */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import { createLogger } from "../../src/log.ts";
import { type Frame, isTurnEnd, onCleanup, startTestGateway, TestClient, type TestGateway } from "../helpers.ts";
import { eventually } from "./evidence.ts";
import { attachedClient } from "./clients.ts";
import { launchRedis, startRedis } from "./redis-server.ts";

const CHAT = "reopen-chat";
const GIVE_UP = "gave up on a Redis connection";

const chatEvents = (frames: Frame[]) => frames.filter((f) => f.chat_id === CHAT && typeof f.seq === "number");

const attached = (gw: TestGateway) => attachedClient(gw.wsUrl("tcp"), CHAT);

test("after Redis is gone past the client's reconnect attempts, each node opens its connections again, resubscribes and catches up", async () => {
  const redis = await startRedis();
  const lines: string[] = [];
  const node = () => startTestGateway(
    { cluster_redis_url: redis.url, cluster_redis_max_retries: 2, cluster_redis_reopen_max_ms: 200, cluster_lease_ms: 60_000, echo_chunk_size: 3, echo_repeat: 4 },
    createLogger("warn", "text", (line) => void lines.push(line)),
  );
  const [a, b] = await Promise.all([node(), node()]);
  const onA = await attached(a);
  const onB = await attached(b);
  onA.send({ type: "message", chat_id: CHAT, content: "before" });
  const first = chatEvents(await onA.until((f) => f.chat_id === CHAT && isTurnEnd(f)));
  expect(chatEvents(await onB.until((f) => f.chat_id === CHAT && isTurnEnd(f)))).toEqual(first);

  // Redis goes away (its data saved first) until every connection of both nodes has given up: two nodes, two connections each.
  const admin = new RedisClient(redis.url);
  await admin.connect();
  await admin.send("SAVE", []);
  admin.close();
  await redis.stop();
  await eventually(() => lines.filter((l) => l.includes(GIVE_UP)).length >= 4, "both nodes giving up on both connections");
  // A turn written while Redis is away waits for its appends.
  onA.send({ type: "message", chat_id: CHAT, content: "during the outage", client_msg_id: "outage-1" });
  await onA.expectQuiet();

  const again = await launchRedis(redis.dir, redis.port);
  onCleanup(again.stop);
  const framesOnA = await onA.until((f) => f.chat_id === CHAT && isTurnEnd(f), 20_000);
  // A fast turn may end in the commit that holds the user event, before the ack.
  if (!framesOnA.some((f) => f.event === "message_ack")) framesOnA.push(...(await onA.until((f) => f.event === "message_ack")));
  expect(framesOnA.find((f) => f.event === "message_ack")).toMatchObject({ client_msg_id: "outage-1", duplicate: false });
  const second = chatEvents(framesOnA);
  expect(second[0]!.seq).toBe(first.at(-1)!.seq + 1);
  expect(chatEvents(await onB.until((f) => f.chat_id === CHAT && isTurnEnd(f), 20_000))).toEqual(second);

  // Forwarding works again too: b's message runs on a.
  onB.send({ type: "message", chat_id: CHAT, content: "from b" });
  const third = chatEvents(await onA.until((f) => f.chat_id === CHAT && isTurnEnd(f), 20_000));
  expect(third[0]).toMatchObject({ event: "user", text: "from b", seq: second.at(-1)!.seq + 1 });
}, 60_000);
