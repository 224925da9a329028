/**
 * Group commit's size bound: a loop turn that stages more than commit_batch_bytes
 * writes and shows its events at once instead of holding them all to its end, and
 * they stay durable before visible, in order, exactly once.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isTurnEnd, startTestGateway, TestClient } from "./helpers.ts";

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

test("committed events not yet in the transcript file resume from its queued batch, byte for byte as clients saw them live", async () => {
  // Nothing reaches the transcript file during the test: every resumed event comes from the queued batch.
  const gw = await startTestGateway({ transcript_flush_ms: 5000, echo_chunk_size: 3 });
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
  const chatId = ready.chat_id as string;
  const liveTexts: string[] = [];
  client.ws.addEventListener("message", (e) => liveTexts.push(e.data as string));
  client.send({ type: "message", chat_id: chatId, content: "abcdefghijklmnop" });
  await client.until(isTurnEnd);
  // A private part goes to storage only; the resumed frame is the live one without it.
  gw.hub.publish({ event: "session_updated", chat_id: chatId, scope: "metadata", title: "t", private: { secret: 1 } });
  const latest = gw.hub.latestSeq(chatId) + 1;
  await client.until((f) => f.seq === latest);
  expect(gw.hub.view(chatId)!.flushedThrough).toBe(0);
  const live = liveTexts.filter((t) => t.includes('"seq":'));
  expect(live.some((t) => t.includes('"event":"delta"'))).toBe(true);
  expect(live.some((t) => t.includes("secret"))).toBe(false);

  for (const since of [0, 3]) {
    const resumer = await TestClient.open(gw.wsUrl("unix"));
    const resumed: string[] = [];
    resumer.ws.addEventListener("message", (e) => resumed.push(e.data as string));
    await resumer.next();
    resumer.send({ type: "attach", chat_id: chatId, since_seq: since });
    await resumer.until((f) => f.seq === latest);
    expect(resumed.filter((t) => t.includes('"seq":'))).toEqual(live.slice(since));
  }
  expect(gw.hub.view(chatId)!.flushedThrough).toBe(0);
});
