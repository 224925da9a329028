/**
 * Two gateways sharing a chat through a real redis-server: the node holding the
 * chat's lease writes it, clients on either node see one identical seq stream,
 * and a resume (attach since_seq) on the other node has no gap and no duplicate.
 */
import { expect, test } from "bun:test";
import { type Frame, isTurnEnd, startTestGateway, TestClient, type TestGateway } from "../helpers.ts";
import { startRedis } from "./redis-server.ts";

const CHAT = "cluster-chat-1";

async function nodes(count: number): Promise<TestGateway[]> {
  const redis = await startRedis();
  return Promise.all(Array.from({ length: count }, () => startTestGateway({ cluster_redis_url: redis.url, echo_chunk_size: 3, echo_repeat: 6 })));
}

/** The chat's events (frames with a seq) among `frames`. */
const chatEvents = (frames: Frame[]) => frames.filter((f) => f.chat_id === CHAT && typeof f.seq === "number");

async function attached(gw: TestGateway, sinceSeq?: number): Promise<TestClient> {
  const { client } = await TestClient.ready(gw.wsUrl("tcp"));
  client.send({ type: "attach", chat_id: CHAT, ...(sinceSeq !== undefined && { since_seq: sinceSeq }) });
  await client.until((f) => f.event === "attached" && f.chat_id === CHAT);
  return client;
}

/** Frames until `count` turns of the chat have ended. */
async function turnsEnded(client: TestClient, count: number): Promise<Frame[]> {
  const frames: Frame[] = [];
  for (let ended = 0; ended < count; ) {
    const frame = await client.next(10_000);
    frames.push(frame);
    if (frame.chat_id === CHAT && isTurnEnd(frame)) ended++;
  }
  return frames;
}

test.each([2, 3])("clients on %i nodes see one identical seq stream; a resume on another node has no gap and no duplicate", async (count) => {
  const [a, b, ...more] = await nodes(count);
  const onB = await attached(b!);
  const others = await Promise.all(more.map((gw) => attached(gw)));
  const onA = await attached(a!);
  onA.send({ type: "message", chat_id: CHAT, content: "hello cluster" });
  onA.send({ type: "message", chat_id: CHAT, content: "second turn" });
  const seenOnA = chatEvents(await turnsEnded(onA, 2));
  expect(seenOnA.length).toBeGreaterThan(10);
  expect(seenOnA.map((f) => f.seq)).toEqual(Array.from({ length: seenOnA.length }, (_, i) => seenOnA[0]!.seq + i));
  for (const client of [onB, ...others]) expect(chatEvents(await turnsEnded(client, 2))).toEqual(seenOnA);

  // Resume on B from the middle of the stream, and from the start.
  const middle = seenOnA[Math.floor(seenOnA.length / 2)]!.seq;
  const resumed = await attached(b!, middle);
  const replayed: Frame[] = [];
  while (replayed.length < seenOnA.filter((f) => f.seq > middle).length) replayed.push(...chatEvents([await resumed.next()]));
  expect(replayed).toEqual(seenOnA.filter((f) => f.seq > middle));
  await resumed.expectQuiet();
  const fromStart = await attached(b!, 0);
  const all: Frame[] = [];
  while (all.length < seenOnA.length) all.push(...chatEvents([await fromStart.next()]));
  expect(all).toEqual(seenOnA);
  await fromStart.expectQuiet();
});

test("a node that does not write the chat refuses a message for it, while the writer holds the lease", async () => {
  const [a, b] = await nodes(2);
  const onA = await attached(a!);
  onA.send({ type: "message", chat_id: CHAT, content: "a writes" });
  await turnsEnded(onA, 1);
  const onB = await attached(b!);
  onB.send({ type: "message", chat_id: CHAT, content: "b tries" });
  const refusal = (await onB.until((f) => f.event === "error")).at(-1);
  expect(refusal).toMatchObject({ chat_id: CHAT, reason: "chat_owned_elsewhere" });
  await onB.expectQuiet();
});
