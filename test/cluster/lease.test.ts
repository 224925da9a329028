/** The chat lease and its fence against a real redis-server, including a real paused (SIGSTOP) owner process. */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import { join } from "node:path";
import { ClusterEventLog } from "../../src/cluster/event-log.ts";
import { ClusterKeys } from "../../src/cluster/keys.ts";
import { ChatLeases } from "../../src/cluster/lease.ts";
import { FencedError } from "../../src/cluster/lua.ts";
import { BUN, onCleanup } from "../helpers.ts";
import { eventually } from "./evidence.ts";
import { startRedis } from "./redis-server.ts";

const keys = new ClusterKeys("test:");
const event = (seq: number, from: string) => {
  const line = JSON.stringify({ event: "message", seq, from });
  return { seq, stored: line, frame: line };
};

async function connect(url: string): Promise<RedisClient> {
  const redis = new RedisClient(url);
  await redis.connect();
  onCleanup(() => redis.close());
  return redis;
}

test("one holder at a time; renew and release only by the holder; epochs only grow", async () => {
  const redis = await connect((await startRedis()).url);
  const a = new ChatLeases(redis, keys, "node-a", 10_000, 1000);
  const b = new ChatLeases(redis, keys, "node-b", 10_000, 1000);
  const fenceA = await a.acquire("c1");
  expect(fenceA).toEqual({ chatId: "c1", epoch: 1, token: "1:node-a" });
  expect(await b.acquire("c1")).toBeUndefined();
  expect(await b.holder("c1")).toEqual({ epoch: 1, nodeId: "node-a" });
  // Another node cannot renew or release with a forged token of its own.
  const forged = { chatId: "c1", epoch: 1, token: "1:node-b" };
  expect(await b.renew(forged)).toBe(false);
  expect(await b.release(forged)).toBe(false);
  expect(await a.renew(fenceA!)).toBe(true);
  expect(await a.release(fenceA!)).toBe(true);
  expect(await a.release(fenceA!)).toBe(false);
  const fenceB = await b.acquire("c1");
  expect(fenceB?.epoch).toBe(2);
  // The old holder's token no longer renews the lease now held by b.
  expect(await a.renew(fenceA!)).toBe(false);
  expect(await a.holder("c1")).toEqual({ epoch: 2, nodeId: "node-b" });
  // Leases are per chat.
  expect((await a.acquire("c2"))?.epoch).toBe(1);
});

test("a lease left to expire frees the chat; the lapsed holder's writes are refused even before anyone takes over", async () => {
  const redis = await connect((await startRedis()).url);
  const leases = new ChatLeases(redis, keys, "node-a", 100, 1000);
  const log = new ClusterEventLog(redis, keys, 1000);
  const fence = (await leases.acquire("c1"))!;
  await log.append(fence, [event(1, "a")]);
  await eventually(async () => (await leases.holder("c1")) === undefined, "the lease expired");
  await expect(log.append(fence, [event(2, "a")])).rejects.toBeInstanceOf(FencedError);
  expect(await leases.renew(fence)).toBe(false);
  expect(await log.lastSeq("c1")).toBe(1);
});

test("an owner paused (SIGSTOP) past its lease cannot write after resuming: no two writers", async () => {
  const redis = await startRedis();
  const client = await connect(redis.url);
  // Long enough that a child starved by a loaded machine still renews in time before it is paused.
  const ttl = 1000;
  const child = Bun.spawn([BUN, join(import.meta.dir, "lease-holder.ts"), redis.url, "c1", String(ttl)], { stdout: "pipe", stderr: "pipe" });
  onCleanup(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const lines = lineReader(child.stdout);
  expect(await lines.until((l) => l.startsWith("held "))).toBe("held 1");
  await lines.until((l) => l.startsWith("appended "));
  child.kill("SIGSTOP");
  const log = new ClusterEventLog(client, keys, 1000);
  const leases = new ChatLeases(client, keys, "parent", 10_000, 1000);
  let fence = await leases.acquire("c1");
  for (let i = 0; fence === undefined && i < 100; i++) {
    await Bun.sleep(ttl / 5);
    fence = await leases.acquire("c1");
  }
  expect(fence?.epoch).toBe(2);
  const next = (await log.lastSeq("c1")) + 1;
  await log.append(fence!, [event(next, "parent")]);
  child.kill("SIGCONT");
  const fenced = await lines.until((l) => l.startsWith("fenced "));
  expect(fenced).toBe(`fenced ${next} renewed=false`);
  expect(await child.exited).toBe(0);
  // The stream: the child's events up to the pause, then only the new owner's.
  const events = await log.after("c1", 0, 1000);
  expect(events.map((e) => e.seq)).toEqual(Array.from({ length: next }, (_, i) => i + 1));
  expect(events.filter((e) => e.seq >= next).every((e) => JSON.parse(e.frame).from === "parent")).toBe(true);
  expect(await leases.holder("c1")).toEqual({ epoch: 2, nodeId: "parent" });
});

/** Lines of a child's stdout, awaited one predicate at a time (bounded by a deadline). */
function lineReader(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return {
    async until(match: (line: string) => boolean, timeoutMs = 10_000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const newline = buffer.indexOf("\n");
        if (newline >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          if (match(line)) return line;
          continue;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching line in ${timeoutMs} ms`);
        const next = await Promise.race([reader.read(), Bun.sleep(left).then(() => undefined)]);
        if (next === undefined || next.done) throw new Error("the child's output ended");
        buffer += decoder.decode(next.value, { stream: true });
      }
    },
  };
}

test("a node asking again for a lease it holds gets it back with the same epoch, renewed", async () => {
  const redis = await connect((await startRedis()).url);
  const a = new ChatLeases(redis, keys, "node-a", 10_000, 1000);
  const first = await a.acquire("c1");
  expect(await a.acquire("c1")).toEqual(first);
  expect(await new ChatLeases(redis, keys, "node-b", 10_000, 1000).acquire("c1")).toBeUndefined();
});
