/**
 * Group commit's size bound: a loop turn that stages more than commit_batch_bytes
 * writes and shows its events at once instead of holding them all to its end, and
 * they stay durable before visible, in order, exactly once.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startTestGateway, TestClient } from "./helpers.ts";

const TITLE = "t".repeat(1000);

function publishTitles(gw: Awaited<ReturnType<typeof startTestGateway>>, chatId: string, count: number): void {
  for (let i = 0; i < count; i++) gw.hub.publish({ event: "session_updated", chat_id: chatId, scope: "metadata", title: `${TITLE}${i}` });
}

/** Events of the chat in the commit log's segments, by seq. */
function loggedSeqs(gw: Awaited<ReturnType<typeof startTestGateway>>, chatId: string): number[] {
  const dir = join(gw.config.data_dir, "commit-log");
  const records = readdirSync(dir).flatMap((name) => readFileSync(join(dir, name), "utf8").split("\n"));
  return records.filter((r) => r.startsWith(`${chatId}\t`)).map((r) => JSON.parse(r.slice(chatId.length + 1)).seq);
}

test("a batch over commit_batch_bytes is written and shown within the loop turn; the rest waits for its end", async () => {
  const gw = await startTestGateway({ commit_batch_bytes: 4096 });
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
  const chatId = ready.chat_id as string;
  publishTitles(gw, chatId, 10);
  // Same synchronous stretch: two full batches of four ~1 KiB events are in the log and visible; the last two wait.
  const durable = gw.hub.latestSeq(chatId);
  expect(durable).toBe(8);
  expect(loggedSeqs(gw, chatId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  const frames = (await client.until((f) => f.seq === 10)).filter((f) => f.event === "session_updated");
  expect(frames.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  expect(loggedSeqs(gw, chatId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

test("under the bound, nothing is written or shown before the loop turn ends", async () => {
  const gw = await startTestGateway();
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
  const chatId = ready.chat_id as string;
  publishTitles(gw, chatId, 10);
  expect(gw.hub.latestSeq(chatId)).toBe(0);
  expect(loggedSeqs(gw, chatId)).toEqual([]);
  const frames = (await client.until((f) => f.seq === 10)).filter((f) => f.event === "session_updated");
  expect(frames.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

test("rings over replay_ring_total_bytes give their flushed events back at the commit after the transcripts caught up", async () => {
  const gw = await startTestGateway({ commit_batch_bytes: 4096, replay_ring_total_bytes: 16 * 1024 });
  const chats = ["a", "b", "c", "d"];
  for (const chatId of chats) publishTitles(gw, chatId, 50);
  const ringBytes = () => chats.reduce((n, chatId) => n + gw.hub.view(chatId)!.ring.bytes, 0);
  expect(ringBytes()).toBeGreaterThan(4 * 40 * 1024);
  // Bounded wait for the transcripts to hold everything (the rings keep what they do not).
  for (let i = 0; i < 200 && chats.some((chatId) => gw.hub.view(chatId)!.flushedThrough < 50); i++) await Bun.sleep(10);
  publishTitles(gw, "a", 1);
  await gw.hub.whenVisible(5000);
  // Each chat keeps at most an equal share of the cap, plus a's newest event, not yet in its transcript.
  expect(ringBytes()).toBeLessThanOrEqual(16 * 1024 + 2 * 1024);
});
