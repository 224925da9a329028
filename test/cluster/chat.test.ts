/**
 * Two gateways sharing a chat through a real redis-server: the node holding the
 * chat's lease writes it, clients on either node see one identical seq stream,
 * and a resume (attach since_seq) on the other node has no gap and no duplicate.
 */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ConfigInput } from "../../src/config.ts";
import { type Frame, isTurnEnd, startTestGateway, TestClient, type TestGateway, tempDir } from "../helpers.ts";
import { eventually, inCommitLog } from "./evidence.ts";
import { attachedClient } from "./clients.ts";
import { startRedis } from "./redis-server.ts";

const CHAT = "cluster-chat-1";

async function nodes(count: number, overrides: Partial<ConfigInput> = {}): Promise<TestGateway[]> {
  const redis = await startRedis();
  return Promise.all(Array.from({ length: count }, () => startTestGateway({ cluster_redis_url: redis.url, echo_chunk_size: 3, echo_repeat: 6, ...overrides })));
}

/** The chat's events (frames with a seq) among `frames`. */
const chatEvents = (frames: Frame[]) => frames.filter((f) => f.chat_id === CHAT && typeof f.seq === "number");

const attached = (gw: TestGateway, sinceSeq?: number) => attachedClient(gw.wsUrl("tcp"), CHAT, sinceSeq);

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

test("a message sent on a node that does not write the chat runs on the writer; acks and duplicates come back to the sender", async () => {
  const [a, b] = await nodes(2);
  const onA = await attached(a!);
  onA.send({ type: "message", chat_id: CHAT, content: "a writes" });
  await turnsEnded(onA, 1);
  const { client: onB } = await TestClient.ready(b!.wsUrl("tcp"));
  onB.send({ type: "message", chat_id: CHAT, content: "b asks", client_msg_id: "m-1" });
  // A fast turn may end in the commit that holds the user event, before the ack.
  const framesOnB = await turnsEnded(onB, 1);
  if (!framesOnB.some((f) => f.event === "message_ack")) framesOnB.push(...(await onB.until((f) => f.event === "message_ack")));
  const framesOnA = await turnsEnded(onA, 1);
  expect(framesOnB.filter((f) => f.event === "message_ack")).toEqual([{ event: "message_ack", chat_id: CHAT, client_msg_id: "m-1", duplicate: false }]);
  const user = chatEvents(framesOnA).find((f) => f.event === "user");
  expect(user).toMatchObject({ text: "b asks", client_msg_id: "m-1" });
  // b's client sees the writer's stream from its own message on.
  expect(chatEvents(framesOnB)).toEqual(chatEvents(framesOnA).filter((f) => f.seq >= user!.seq));
  // A resend through b is acknowledged as a duplicate by the writer and runs nothing.
  onB.send({ type: "message", chat_id: CHAT, content: "b asks", client_msg_id: "m-1" });
  const resend = (await onB.until((f) => f.event === "message_ack")).at(-1);
  expect(resend).toMatchObject({ client_msg_id: "m-1", duplicate: true });
  await onB.expectQuiet();
  await onA.expectQuiet();
});

test("durable before visible: while Redis holds writes back, the writer's own clients see nothing of the chat; then everything, in order", async () => {
  const redis = await startRedis();
  const a = await startTestGateway({ cluster_redis_url: redis.url, echo_chunk_size: 3, echo_repeat: 2 });
  const onA = await attached(a);
  // The first message makes a the writer (its lease and first append happen unpaused).
  onA.send({ type: "message", chat_id: CHAT, content: "first" });
  const first = chatEvents(await turnsEnded(onA, 1));
  const admin = new RedisClient(redis.url);
  await admin.connect();
  await admin.send("CLIENT", ["PAUSE", "10000", "WRITE"]);
  onA.send({ type: "message", chat_id: CHAT, content: "held back" });
  // Written locally, its append held by Redis: a hub that did not wait for the append would have revealed it by now.
  await eventually(() => inCommitLog(join(a.dir, "data"), "held back"), "the held batch in the local commit log");
  await onA.expectQuiet();
  await admin.send("CLIENT", ["UNPAUSE"]);
  const second = chatEvents(await turnsEnded(onA, 1));
  expect(second[0]!.seq).toBe(first.at(-1)!.seq + 1);
  expect(second.find((f) => f.event === "user")).toMatchObject({ text: "held back" });
  const last = Number(await admin.get(`agentgate:{${CHAT}}:last`));
  admin.close();
  expect(last).toBeGreaterThanOrEqual(second.at(-1)!.seq);
});

test("a stop sent on a node that does not write the chat stops the writer's running turn", async () => {
  const [a, b] = await nodes(2, { echo_chunk_size: 1, echo_delay_ms: 5 });
  const onA = await attached(a!);
  const onB = await attached(b!);
  onA.send({ type: "message", chat_id: CHAT, content: "x".repeat(2000) });
  await onB.until((f) => f.event === "delta" && f.chat_id === CHAT);
  onB.send({ type: "stop", chat_id: CHAT });
  const frames = await turnsEnded(onB, 1);
  // The stop's notice says how many it stopped in a field (mirroring nodes drop the chat's queued messages by it), its text as nanobot's.
  expect(frames.find((f) => f.event === "message" && f.chat_id === CHAT)).toMatchObject({ text: "Stopped 1 task(s).", stopped: 1 });
  expect(frames.find((f) => f.event === "turn_end")?.status).toBe("cancelled");
  expect(chatEvents(await turnsEnded(onA, 1)).at(-1)).toEqual(chatEvents(frames).at(-1));
});

test("after Redis cuts every subscriber connection, the nodes subscribe again: forwarding and fan-out work as before", async () => {
  const redis = await startRedis();
  const [a, b] = await Promise.all([0, 1].map(() => startTestGateway({ cluster_redis_url: redis.url, echo_chunk_size: 3, echo_repeat: 2 })));
  const onA = await attached(a!);
  onA.send({ type: "message", chat_id: CHAT, content: "a writes" });
  await turnsEnded(onA, 1);
  const onB = await attached(b!);
  const admin = new RedisClient(redis.url);
  await admin.connect();
  const channels = async () => ((await admin.send("PUBSUB", ["CHANNELS", "agentgate:*"])) as string[]).sort();
  const before = await channels();
  expect(before.length).toBeGreaterThanOrEqual(3); // two inboxes and the chat's channel
  expect(await admin.send("CLIENT", ["KILL", "TYPE", "pubsub"])).toBe(2);
  for (let i = 0; i < 500 && (await channels()).join() !== before.join(); i++) await Bun.sleep(10);
  expect(await channels()).toEqual(before);
  admin.close();

  // b's message goes to a's inbox; a's turn reaches b's client through the chat's channel.
  onB.send({ type: "message", chat_id: CHAT, content: "after the cut", client_msg_id: "cut-1" });
  const framesOnB = await turnsEnded(onB, 1);
  if (!framesOnB.some((f) => f.event === "message_ack")) framesOnB.push(...(await onB.until((f) => f.event === "message_ack")));
  expect(framesOnB.find((f) => f.event === "message_ack")).toMatchObject({ client_msg_id: "cut-1", duplicate: false });
  expect(chatEvents(framesOnB)).toEqual(chatEvents(await turnsEnded(onA, 1)));
});

test("an idle chat is let go: its writer releases the lease (following it while its client stays), a node with no client of it unsubscribes, and the next writer numbers on", async () => {
  const redis = await startRedis();
  const [a, b] = await Promise.all([0, 1].map(() => startTestGateway({ cluster_redis_url: redis.url, cluster_idle_ms: 200, echo_chunk_size: 3, echo_repeat: 2 })));
  const onA = await attached(a!);
  const onB = await attached(b!);
  onA.send({ type: "message", chat_id: CHAT, content: "a writes" });
  const first = chatEvents(await turnsEnded(onA, 1));
  await turnsEnded(onB, 1);
  const admin = new RedisClient(redis.url);
  await admin.connect();
  const owner = () => admin.get(`agentgate:{${CHAT}}:owner`);
  const subscribers = async () => ((await admin.send("PUBSUB", ["NUMSUB", `agentgate:{${CHAT}}:notify`])) as [string, number])[1];
  expect(await owner()).not.toBeNull();

  // a lets the lease go although its client stays (it follows the chat from then on); b's client leaves, so b unsubscribes.
  onB.ws.close();
  await onB.closed;
  for (let i = 0; i < 500 && ((await owner()) !== null || (await subscribers()) !== 1); i++) await Bun.sleep(10);
  expect(await owner()).toBeNull();
  expect(await subscribers()).toBe(1);

  // A client on b sends: b takes the free lease and numbers on; a's client sees b's turn.
  const { client: newOnB } = await TestClient.ready(b!.wsUrl("tcp"));
  newOnB.send({ type: "message", chat_id: CHAT, content: "b writes now" });
  const second = chatEvents(await turnsEnded(newOnB, 1));
  expect(second[0]!.seq).toBe(first.at(-1)!.seq + 1);
  expect(chatEvents(await turnsEnded(onA, 1))).toEqual(second);
  admin.close();
});

test("a node restarting with commit-log leftovers Redis never took shows the stream's events, not its orphans", async () => {
  const redis = await startRedis();
  const a = await startTestGateway({ cluster_redis_url: redis.url, echo_chunk_size: 3, echo_repeat: 6 });
  const onA = await attached(a);
  onA.send({ type: "message", chat_id: CHAT, content: "hello cluster" });
  const published = chatEvents(await turnsEnded(onA, 1));
  // What a writer killed between its local log write and the fenced append leaves: the seq the cluster then gave to another event.
  const dataDir = tempDir();
  const last = published.at(-1)!.seq;
  mkdirSync(join(dataDir, "commit-log"), { recursive: true });
  writeFileSync(join(dataDir, "commit-log", "000000000001.log"), `${CHAT}\t${JSON.stringify({ event: "message", chat_id: CHAT, text: "orphan", seq: last })}\n`);
  const b = await startTestGateway({ cluster_redis_url: redis.url, data_dir: dataDir });
  const onB = await attached(b, 0);
  const replayed: Frame[] = [];
  while (replayed.length < published.length) replayed.push(...chatEvents([await onB.next()]));
  expect(replayed).toEqual(published);
  await onB.expectQuiet();
});
