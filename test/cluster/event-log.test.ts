/** The fenced chat event log in Redis and the per-node fan-out, against a real redis-server. */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import { ClusterEventLog, type LoggedEvent } from "../../src/cluster/event-log.ts";
import { ClusterFanout } from "../../src/cluster/fanout.ts";
import { ClusterKeys } from "../../src/cluster/keys.ts";
import { ChatLeases } from "../../src/cluster/lease.ts";
import { Subscriptions } from "../../src/cluster/subscriptions.ts";
import { onCleanup } from "../helpers.ts";
import { startRedis } from "./redis-server.ts";

const keys = new ClusterKeys("test:");

async function connect(url: string): Promise<RedisClient> {
  const redis = new RedisClient(url);
  await redis.connect();
  onCleanup(() => redis.close());
  return redis;
}

const batch = (from: number, to: number): LoggedEvent[] =>
  Array.from({ length: to - from + 1 }, (_, i) => {
    const seq = from + i;
    const frame = JSON.stringify({ event: "delta", chat_id: "c1", seq, text: `t${seq}\n"q"` });
    // Odd seqs carry a private part in storage only.
    const stored = seq % 2 === 1 ? JSON.stringify({ ...JSON.parse(frame), private: { path: "/srv" } }) : frame;
    return { seq, stored, frame };
  });

/** A node: one command connection, one subscriber connection, frames delivered per chat. */
async function node(url: string, cap = 10_000, archived: LoggedEvent[] = []) {
  const redis = await connect(url);
  const subscriber = new Subscriptions(await connect(url), (e) => {
    throw e;
  });
  const log = new ClusterEventLog(redis, keys, cap);
  const delivered: { seq: number; frame: string }[] = [];
  const trimmed: [number, number][] = [];
  const fanout = new ClusterFanout(subscriber, log, keys, {
    deliver: (_chat, seq, frame) => delivered.push({ seq, frame }),
    // Older history only from `archived` (none unless given), one page of up to 4 events per call.
    older: async (_chat, from, to) => {
      // A read that takes a while, as the durable store's does: other work interleaves.
      await Bun.sleep(1);
      const page = archived.filter((e) => e.seq >= from && e.seq <= to).slice(0, 4);
      return { first: page[0]?.seq ?? from, frames: page.map((e) => e.frame) };
    },
    trimmed: (_chat, from, to) => trimmed.push([from, to]),
    error: (_chat, e) => {
      throw e;
    },
  }, 1000);
  return { redis, log, fanout, delivered, trimmed, leases: new ChatLeases(redis, keys, `node-${Math.random()}`, 10_000, 1000) };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await Bun.sleep(10);
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

test("append keeps stored lines and client frames apart, reads back by seq, and refuses a batch that does not continue past the last seq", async () => {
  const a = await node((await startRedis()).url);
  const fence = (await a.leases.acquire("c1"))!;
  await a.log.append(fence, batch(1, 3));
  await a.log.append(fence, batch(4, 4));
  expect(await a.log.after("c1", 0, 100)).toEqual(batch(1, 4));
  expect(await a.log.after("c1", 2, 1)).toEqual(batch(3, 3));
  expect(await a.log.lastSeq("c1")).toBe(4);
  // Seq 4 already holds another event: refused whole.
  const other = batch(4, 5).map((e) => ({ ...e, stored: e.stored.replace("t", "x") }));
  await expect(a.log.append(fence, other)).rejects.toMatchObject({ lastSeq: 4 });
  // The refused batch wrote nothing.
  expect(await a.log.lastSeq("c1")).toBe(4);
  expect((await a.log.after("c1", 0, 100)).length).toBe(4);
});

test("a retried batch (its first append ran though the writer stopped waiting) adds and publishes only its new events", async () => {
  const url = (await startRedis()).url;
  const a = await node(url);
  const b = await node(url);
  const fence = (await a.leases.acquire("c1"))!;
  await b.fanout.follow("c1", 0);
  await a.log.append(fence, batch(1, 2));
  await a.log.append(fence, batch(1, 4));
  await a.log.append(fence, batch(3, 4));
  expect(await a.log.after("c1", 0, 100)).toEqual(batch(1, 4));
  expect(await a.log.lastSeq("c1")).toBe(4);
  await until(() => b.delivered.length >= 4, "4 events delivered");
  await a.log.append(fence, batch(5, 5));
  await until(() => b.delivered.length >= 5, "5 events delivered");
  expect(b.delivered.map((d) => d.seq)).toEqual([1, 2, 3, 4, 5]);
  expect(b.delivered.map((d) => d.frame)).toEqual(batch(1, 5).map((e) => e.frame));
});

test("followers on two nodes receive the owner's batches exactly once, in seq order, including what was appended before they followed", async () => {
  const url = (await startRedis()).url;
  const owner = await node(url);
  const b = await node(url);
  const c = await node(url);
  const fence = (await owner.leases.acquire("c1"))!;
  await owner.log.append(fence, batch(1, 5));
  await b.fanout.follow("c1", 0);
  const appending = (async () => {
    for (let seq = 6; seq <= 200; seq += 5) await owner.log.append(fence, batch(seq, seq + 4));
  })();
  // c follows while batches are being appended: catch-up and live notices overlap.
  await c.fanout.follow("c1", 3);
  await appending;
  await until(() => b.delivered.length === 200 && c.delivered.length === 197, "every batch on both followers");
  expect(b.delivered).toEqual(batch(1, 200).map(({ seq, frame }) => ({ seq, frame })));
  expect(c.delivered).toEqual(batch(4, 200).map(({ seq, frame }) => ({ seq, frame })));
});

/** An owner and a follower (b) that has received the first batch, seqs 1 to 3. */
async function ownerAndFollower() {
  const url = (await startRedis()).url;
  const owner = await node(url);
  const b = await node(url);
  const fence = (await owner.leases.acquire("c1"))!;
  await b.fanout.follow("c1", 0);
  await owner.log.append(fence, batch(1, 3));
  await until(() => b.delivered.length === 3, "first batch");
  return { owner, b, fence };
}

test("a follower that missed notices (unfollowed, then followed again from where it was) fills the gap from the stream", async () => {
  const { owner, b, fence } = await ownerAndFollower();
  await b.fanout.unfollow("c1");
  await owner.log.append(fence, batch(4, 9));
  await b.fanout.follow("c1", b.delivered.at(-1)!.seq);
  await owner.log.append(fence, batch(10, 12));
  await until(() => b.delivered.length === 12, "all 12");
  expect(b.delivered.map((d) => d.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
});

test("after its subscriber connection is cut (CLIENT KILL), a follower subscribes again and delivers what was appended meanwhile, then live batches, once each", async () => {
  const { owner, b, fence } = await ownerAndFollower();
  const channel = keys.channel("c1");
  const subscribers = async () => ((await owner.redis.send("PUBSUB", ["NUMSUB", channel])) as [string, number])[1];
  expect(await owner.redis.send("CLIENT", ["KILL", "TYPE", "pubsub"])).toBe(1);
  // Appended while the follower is cut off or reconnecting: no notice reaches it.
  await owner.log.append(fence, batch(4, 9));
  await until(() => b.delivered.length === 9, "the missed batch, read from the stream after the reconnect");
  for (let i = 0; i < 500 && (await subscribers()) === 0; i++) await Bun.sleep(10);
  expect(await subscribers()).toBe(1);
  await owner.log.append(fence, batch(10, 12));
  await until(() => b.delivered.length === 12, "a live batch after the reconnect");
  await Bun.sleep(50);
  expect(b.delivered.map((d) => d.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
});

test("history the capped stream trimmed is reported for the durable store to supply, never skipped silently", async () => {
  const url = (await startRedis()).url;
  const owner = await node(url, 10);
  const b = await node(url, 10);
  const fence = (await owner.leases.acquire("c1"))!;
  for (let seq = 1; seq <= 500; seq += 10) await owner.log.append(fence, batch(seq, seq + 9));
  // The oldest seq the stream still holds.
  const oldest = (await owner.log.after("c1", 0, 1))[0]!.seq;
  expect(oldest).toBeGreaterThan(1);
  await b.fanout.follow("c1", 0);
  expect(b.trimmed).toEqual([[1, oldest - 1]]);
  expect(b.delivered[0]!.seq).toBe(oldest);
  expect(b.delivered.at(-1)!.seq).toBe(500);
});

test("a retried batch whose events the stream has trimmed since its first append is taken as appended; another lease's batch of trimmed seqs is refused", async () => {
  const url = (await startRedis()).url;
  const a = await node(url, 10);
  const b = await node(url, 10);
  const fence = (await a.leases.acquire("c1"))!;
  await b.fanout.follow("c1", 0);
  await a.log.append(fence, batch(1, 5));
  for (let seq = 6; seq <= 300; seq += 5) await a.log.append(fence, batch(seq, seq + 4));
  expect((await a.log.after("c1", 0, 1))[0]!.seq).toBeGreaterThan(5);
  // The first append ran though its writer stopped waiting; the retry comes after the trim, ahead of the newer
  // events (a batch's seqs follow one another: those appended since are sent again too) and a new one.
  await a.log.append(fence, [...batch(1, 5), ...batch(6, 301)]);
  expect(await a.log.lastSeq("c1")).toBe(301);
  await until(() => b.delivered.length >= 301, "301 events delivered");
  await Bun.sleep(50);
  expect(b.delivered.map((d) => d.seq)).toEqual(Array.from({ length: 301 }, (_, i) => i + 1));
  // A later lease (another writer) never wrote seqs 1..5: its batch of them is refused.
  await a.leases.release(fence);
  const other = (await b.leases.acquire("c1"))!;
  await expect(b.log.append(other, batch(1, 2))).rejects.toMatchObject({ lastSeq: 301 });
});

test("two resumes of one chat at once (a disown and a settled withhold in the same append) deliver each seq once, in order", async () => {
  const url = (await startRedis()).url;
  const owner = await node(url, 10);
  const fence = (await owner.leases.acquire("c1"))!;
  for (let seq = 1; seq <= 200; seq += 10) await owner.log.append(fence, batch(seq, seq + 9));
  const oldest = (await owner.log.after("c1", 0, 1))[0]!.seq;
  expect(oldest).toBeGreaterThan(1);
  const b = await node(url, 10, batch(1, oldest - 1));
  await b.fanout.follow("c1", 0);
  b.delivered.length = 0;
  await Promise.all([b.fanout.resume("c1", 0), b.fanout.resume("c1", 0)]);
  expect(b.delivered.map((d) => d.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  expect(b.trimmed).toEqual([]);
});

test("a batch whose seqs do not follow one another (newer queued events ahead of renumbered ones) is refused before anything is written", async () => {
  const a = await node((await startRedis()).url);
  const fence = (await a.leases.acquire("c1"))!;
  await a.log.append(fence, batch(1, 16));
  await expect(a.log.append(fence, [...batch(17, 18), ...batch(14, 15)])).rejects.toMatchObject({ lastSeq: 16 });
  await expect(a.log.append(fence, [...batch(17, 17), ...batch(19, 19)])).rejects.toMatchObject({ lastSeq: 16 });
  expect(await a.log.lastSeq("c1")).toBe(16);
  expect((await a.log.after("c1", 16, 100)).length).toBe(0);
  await a.log.append(fence, batch(17, 18));
  expect(await a.log.lastSeq("c1")).toBe(18);
});
