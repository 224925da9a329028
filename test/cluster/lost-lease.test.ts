/**
 * A node that loses a chat's lease to another node (its append fenced, or its
 * renewal refused) keeps serving its clients of the chat: they go on receiving
 * the chat's one stream, the new writer's events included, in seq order with no
 * gap and no duplicate, without attaching again.
 */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import type { ConfigInput } from "../../src/config.ts";
import { MESSAGE_NOT_STORED } from "../../src/protocol/errors.ts";
import { type Frame, isTurnEnd, onCleanup, startTestGateway, TestClient, type TestGateway } from "../helpers.ts";
import { attachedClient } from "./clients.ts";
import { startRedis } from "./redis-server.ts";

const CHAT = "lost-lease-chat";

const chatEvents = (frames: Frame[]) => frames.filter((f) => f.chat_id === CHAT && typeof f.seq === "number");
const contiguous = (events: Frame[]) => events.every((f, i) => i === 0 || f.seq === events[i - 1]!.seq + 1);

/** Frames until the chat's next turn ends. */
const turnEnded = (client: TestClient) => client.until((f) => f.chat_id === CHAT && isTurnEnd(f), 15_000);

/** Two nodes; a client on `a` has written one turn (a holds the lease, and follows nobody's fan-out for it), a client on `b` is attached. */
async function twoNodes(overrides: Partial<ConfigInput>) {
  const server = await startRedis();
  const [a, b] = (await Promise.all([0, 1].map(() => startTestGateway({ cluster_redis_url: server.url, echo_chunk_size: 3, echo_repeat: 4, ...overrides })))) as [TestGateway, TestGateway];
  const { client: onA } = await TestClient.ready(a.wsUrl("tcp"));
  onA.send({ type: "message", chat_id: CHAT, content: "on a" });
  const first = chatEvents(await turnEnded(onA));
  const onB = await attachedClient(b.wsUrl("tcp"), CHAT, first.at(-1)!.seq);
  const redis = new RedisClient(server.url);
  await redis.connect();
  onCleanup(() => redis.close());
  return { a, b, onA, onB, first, redis };
}

/** b's client writes a turn, b taking the lease a no longer holds in Redis. */
async function bTakesOver(onB: TestClient, redis: RedisClient): Promise<Frame[]> {
  await redis.send("DEL", [`agentgate:{${CHAT}}:owner`]);
  onB.send({ type: "message", chat_id: CHAT, content: "on b" });
  // Up to the end of b's own turn (a turn b found running is closed first).
  let ran = false;
  return chatEvents(await onB.until((f) => f.chat_id === CHAT && ((ran ||= f.event === "user" && f.text === "on b"), ran && isTurnEnd(f)), 15_000));
}

test("fenced append: the old writer's clients are told, then receive the new writer's events from the last seq they were sent, in order, no gap, no duplicate", async () => {
  // A long lease: a learns of the loss by its next append being fenced, not by a renewal.
  const { onA, onB, first, redis } = await twoNodes({ cluster_lease_ms: 60_000 });
  const byB = await bTakesOver(onB, redis);
  onA.send({ type: "message", chat_id: CHAT, content: "fenced on a" });
  const toldA = await onA.until((f) => f.event === "error" && f.reason === MESSAGE_NOT_STORED);
  expect(toldA).toContainEqual(expect.objectContaining({ event: "error", reason: "chat_owned_elsewhere", chat_id: CHAT }));
  // What b wrote meanwhile, then b's next turn, reach a's client without a new attach.
  const caughtUp = chatEvents(toldA);
  if (caughtUp.at(-1)?.seq !== byB.at(-1)!.seq) caughtUp.push(...chatEvents(await onA.until((f) => f.chat_id === CHAT && f.seq === byB.at(-1)!.seq, 15_000)));
  expect(caughtUp).toEqual(byB);
  onB.send({ type: "message", chat_id: CHAT, content: "b again" });
  const nextOnB = chatEvents(await turnEnded(onB));
  expect(chatEvents(await turnEnded(onA))).toEqual(nextOnB);
  const seen = [...first, ...caughtUp, ...nextOnB];
  expect(contiguous(seen)).toBe(true);
  await onA.expectQuiet();
}, 40_000);

test("renewal refused: the old writer's clients receive the new writer's events with no message of their own, in order, no gap, no duplicate", async () => {
  const { onA, onB, first, redis } = await twoNodes({ cluster_lease_ms: 900 });
  const byB = await bTakesOver(onB, redis);
  const onAEvents = chatEvents(await onA.until((f) => f.chat_id === CHAT && f.seq === byB.at(-1)!.seq, 15_000));
  expect(onAEvents).toEqual(byB);
  expect(contiguous([...first, ...onAEvents])).toBe(true);
  await onA.expectQuiet();
}, 40_000);

test("lease lost mid-turn: events the old writer published meanwhile (refused, holding the new writer's seqs) do not hide the new writer's first events from its clients", async () => {
  const { onA, onB, first, redis } = await twoNodes({ cluster_lease_ms: 60_000, echo_chunk_size: 1, echo_repeat: 1, echo_delay_ms: 1 });
  // a runs a long turn, publishing all along; b takes the chat over in the middle of it.
  onA.send({ type: "message", chat_id: CHAT, content: "x".repeat(5000) });
  const seenA = chatEvents(await onA.until((f) => f.chat_id === CHAT && f.event === "delta"));
  await onB.until((f) => f.chat_id === CHAT && f.event === "delta");
  const byB = await bTakesOver(onB, redis);
  seenA.push(...chatEvents(await onA.until((f) => f.chat_id === CHAT && f.seq === byB.at(-1)!.seq, 20_000)));
  // a's client saw exactly the chat's stream as Redis holds it: its own turn up to the takeover, then b's events.
  const entries = (await redis.send("XRANGE", [`agentgate:{${CHAT}}:events`, "-", "+"])) as [string, string[]][];
  const stored = entries.map(([, fields]) => JSON.parse(fields.at(-1)!) as Frame).filter((f) => f.seq > first.at(-1)!.seq);
  expect(seenA.map((f) => [f.seq, f.event, f.turn_id])).toEqual(stored.map((f) => [f.seq, f.event, f.turn_id]));
  expect(contiguous([...first, ...seenA])).toBe(true);
}, 40_000);
