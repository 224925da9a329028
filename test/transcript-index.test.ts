/**
 * The sparse seq → offset index beside a transcript: a tail read starts near
 * the end instead of at byte 0, and a wrong or stale index never changes what is
 * read.
 */
import { expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../src/log.ts";
import { indexedStart, indexPath, readTranscript, TranscriptWriter } from "../src/store/transcript.ts";
import { tempDir } from "./helpers.ts";

async function seqsFrom(file: string, from: number): Promise<number[]> {
  const out: number[] = [];
  for await (const { seq } of readTranscript(file, from)) out.push(seq);
  return out;
}

async function writeChat(dir: string, events: number): Promise<string> {
  const w = new TranscriptWriter({ dir, flushMs: 1000, retryMs: 50, maxLineBytes: 4096, maxOpenFiles: 2, indexEveryBytes: 1024, log: createLogger("error") });
  for (let seq = 1; seq <= events; seq++) {
    const e = seq % 7 === 0 ? { event: "message", chat_id: "c", text: `m${seq}`, seq } : { event: "delta", chat_id: "c", text: `d${seq}`, stream_id: "s", seq };
    w.append("c", seq, JSON.stringify(e), e);
    if (seq % 25 === 0) await w.flush();
  }
  await w.close(false);
  return join(dir, "c.jsonl");
}

test("a tail read starts at the index entry just below it and returns exactly the tail", async () => {
  const file = await writeChat(tempDir(), 3000);
  const size = Bun.file(file).size;
  const start = await indexedStart(file, 2901, size);
  expect(start.offset).toBeGreaterThan(size - 4096);
  expect(start.seq).toBeLessThanOrEqual(2901);
  expect(readFileSync(file).subarray(start.offset).toString().split("\n")[0]).toContain(`"seq":${start.seq}`);
  expect(await seqsFrom(file, 2901)).toEqual(Array.from({ length: 100 }, (_, i) => 2901 + i));
  expect(await seqsFrom(file, 1)).toHaveLength(3000);
});

test("an index entry that does not match its line, or lies past the end, is ignored", async () => {
  const file = await writeChat(tempDir(), 400);
  const size = Bun.file(file).size;
  writeFileSync(indexPath(file), `390 ${size + 10}\n300 7\ngarbage\n`);
  expect(await indexedStart(file, 395, size)).toEqual({ seq: 300, offset: 7 });
  expect(await seqsFrom(file, 395)).toEqual([395, 396, 397, 398, 399, 400]);
});

test("the index starts at four strides: a smaller transcript has no index file and is read whole", async () => {
  const small = await writeChat(tempDir(), 150);
  expect(Bun.file(small).size).toBeLessThan(4 * 1024);
  expect(existsSync(indexPath(small))).toBe(false);
  expect(await seqsFrom(small, 100)).toEqual(Array.from({ length: 51 }, (_, i) => 100 + i));
  const big = await writeChat(tempDir(), 3000);
  const offsets = readFileSync(indexPath(big), "utf8").trim().split("\n").map((entry) => Number(entry.split(" ")[1]));
  expect(Math.min(...offsets)).toBeGreaterThanOrEqual(4 * 1024);
});

test("a chat whose file is closed between flushes (more chats than open files) is still indexed, and a restart indexes on", async () => {
  const dir = tempDir();
  const write = async (from: number, to: number) => {
    const w = new TranscriptWriter({ dir, flushMs: 1000, retryMs: 50, maxLineBytes: 4096, maxOpenFiles: 1, indexEveryBytes: 1024, log: createLogger("error") });
    for (let seq = from; seq <= to; seq++) {
      for (const chat of ["a", "b"]) {
        const e = { event: "message", chat_id: chat, text: `m${seq}`, seq };
        w.append(chat, seq, JSON.stringify(e), e);
      }
      if (seq % 25 === 0) await w.flush(); // each flush reopens both files: the cap is one
    }
    await w.close(false);
  };
  await write(1, 1500);
  const file = join(dir, "a.jsonl");
  const entries = () => readFileSync(indexPath(file), "utf8").trim().split("\n").length;
  const beforeRestart = entries();
  expect(beforeRestart).toBeGreaterThan(20);
  await write(1501, 3000);
  expect(entries()).toBeGreaterThan(beforeRestart + 20);
  // Entries come at batch starts (25 events): the one for 2901 is within two batches of it.
  expect((await indexedStart(file, 2901, Bun.file(file).size)).seq).toBeGreaterThan(2850);
  expect(await seqsFrom(file, 2901)).toEqual(Array.from({ length: 100 }, (_, i) => 2901 + i));
});

/** Descriptors this process holds on files under `dir` (whose names end with `suffix`). */
function openIn(dir: string, suffix = ""): number {
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(dir) && target.endsWith(suffix);
    } catch {
      return false;
    }
  }).length;
}

/** Messages seq `from`..`to` into each chat, flushed every 25. */
async function messages(w: TranscriptWriter, chats: string[], from: number, to: number): Promise<void> {
  for (let seq = from; seq <= to; seq++) {
    for (const chat of chats) {
      const e = { event: "message", chat_id: chat, text: `m${seq}`, seq };
      w.append(chat, seq, JSON.stringify(e), e);
    }
    if (seq % 25 === 0) await w.flush();
  }
}

/** Three chats streaming messages past several index strides; the most descriptors into `dir` seen at a flush. */
async function threeChats(dir: string, maxOpenFiles: number): Promise<number> {
  const w = new TranscriptWriter({ dir, flushMs: 1000, retryMs: 50, maxLineBytes: 4096, maxOpenFiles, indexEveryBytes: 1024, log: createLogger("error") });
  let most = 0;
  for (let seq = 1; seq <= 2000; seq += 25) {
    await messages(w, ["a", "b", "c"], seq, seq + 24);
    most = Math.max(most, openIn(dir));
  }
  await w.close(false);
  expect(openIn(dir)).toBe(0);
  for (const chat of ["a", "b", "c"]) {
    const file = join(dir, `${chat}.jsonl`);
    expect(readFileSync(indexPath(file), "utf8").trim().split("\n").length).toBeGreaterThan(20);
    expect(await seqsFrom(file, 1901)).toEqual(Array.from({ length: 100 }, (_, i) => 1901 + i));
  }
  return most;
}

test("an index stays open beside its transcript (no open and close per entry)", async () => {
  expect(await threeChats(tempDir(), 16)).toBe(6);
});

test("kept-open indexes count against maxOpenFiles and take only spare descriptors; indexes stay whole either way", async () => {
  expect(await threeChats(tempDir(), 4)).toBe(4); // three transcripts and one index
  expect(await threeChats(tempDir(), 2)).toBe(2); // transcripts evicting each other, indexes opened per entry
});

test("a chat opening when indexes hold the spare descriptors closes an index, not another chat's transcript", async () => {
  const dir = tempDir();
  const w = new TranscriptWriter({ dir, flushMs: 1000, retryMs: 50, maxLineBytes: 4096, maxOpenFiles: 4, indexEveryBytes: 1024, log: createLogger("error") });
  const stream = (chats: string[], from: number, to: number) => messages(w, chats, from, to);
  await stream(["a", "b", "c"], 1, 500);
  expect([openIn(dir, ".jsonl"), openIn(dir, ".idx")]).toEqual([3, 1]);
  await stream(["a", "b", "c", "d"], 501, 525);
  expect([openIn(dir, ".jsonl"), openIn(dir, ".idx")]).toEqual([4, 0]);
  await w.close(false);
  expect(await seqsFrom(join(dir, "a.jsonl"), 501)).toHaveLength(25);
});

test("a chat evicted while its fsync is in flight is closed when the fsync ends; its index at once", async () => {
  const dir = tempDir();
  const w = new TranscriptWriter({ dir, flushMs: 1000, retryMs: 50, maxLineBytes: 4096, maxOpenFiles: 4, indexEveryBytes: 1024, log: createLogger("error") });
  await messages(w, ["a", "b", "c"], 1, 500);
  expect([openIn(dir, ".jsonl"), openIn(dir, ".idx")]).toEqual([3, 1]);
  await messages(w, ["a", "b", "c"], 501, 510);
  const synced = w.flush(true); // fsyncs of a, b and c in flight
  await messages(w, ["d", "e"], 1, 25); // d takes the index's descriptor, e evicts a, whose fsync is still running
  expect(await synced).toBe(true);
  expect([openIn(dir, ".jsonl"), openIn(dir, ".idx")]).toEqual([4, 0]);
  await w.close(false);
  expect(openIn(dir)).toBe(0);
  expect(await seqsFrom(join(dir, "a.jsonl"), 501)).toHaveLength(10);
});

test("removing a chat closes its index too; the chat coming back starts a new transcript", async () => {
  const dir = tempDir();
  const w = new TranscriptWriter({ dir, flushMs: 1000, retryMs: 50, maxLineBytes: 4096, maxOpenFiles: 16, indexEveryBytes: 1024, log: createLogger("error") });
  await messages(w, ["a", "b"], 1, 500);
  expect(openIn(dir, "a.jsonl.idx")).toBe(1);
  await w.remove("a");
  expect([openIn(dir, "a.jsonl"), openIn(dir, "a.jsonl.idx")]).toEqual([0, 0]);
  expect(existsSync(indexPath(join(dir, "a.jsonl")))).toBe(false);
  await messages(w, ["a"], 1, 25);
  await w.close(false);
  // Counted before reading: a read's stream closes its descriptor asynchronously after its last chunk.
  expect(openIn(dir)).toBe(0);
  expect(await seqsFrom(join(dir, "a.jsonl"), 1)).toHaveLength(25);
});

test("events of a chat id published while its removal is under way go into a new transcript, not the one being deleted", async () => {
  const dir = tempDir();
  const w = new TranscriptWriter({ dir, flushMs: 1000, retryMs: 50, maxLineBytes: 4096, maxOpenFiles: 16, indexEveryBytes: 1024, log: createLogger("error") });
  for (let round = 0; round < 5; round++) {
    await messages(w, ["a"], 1, 500);
    const removing = w.remove("a");
    await messages(w, ["a"], 501, 525); // written at once, before the removal's deletions ran
    await removing;
    expect(await seqsFrom(join(dir, "a.jsonl"), 1)).toEqual(Array.from({ length: 25 }, (_, i) => 501 + i));
    await w.remove("a");
  }
  expect(readdirSync(join(dir, ".removed"))).toEqual([]);
  // The trash directory deleted under a running writer: made again, and the chat's files still leave their paths.
  await messages(w, ["a"], 1, 500);
  rmSync(join(dir, ".removed"), { recursive: true });
  await w.remove("a");
  expect([existsSync(join(dir, "a.jsonl")), existsSync(indexPath(join(dir, "a.jsonl")))]).toEqual([false, false]);
  expect(readdirSync(join(dir, ".removed"))).toEqual([]);
  await w.close(false);
  // A process killed in the middle of a removal leaves its moved files behind: the next writer deletes them.
  writeFileSync(join(dir, ".removed", "1"), "left behind");
  new TranscriptWriter({ dir, flushMs: 1000, retryMs: 50, maxLineBytes: 4096, maxOpenFiles: 16, log: createLogger("error") });
  expect(readdirSync(join(dir, ".removed"))).toEqual([]);
});

test("a sync of many files the open-file cap closed reopens a few at a time, not all at once", async () => {
  const dir = tempDir();
  const w = new TranscriptWriter({ dir, flushMs: 1000, retryMs: 50, maxLineBytes: 4096, maxOpenFiles: 2, log: createLogger("error") });
  const chats = Array.from({ length: 60 }, (_, i) => `c${i}`);
  await messages(w, chats, 1, 3); // 58 of them closed again since written
  let most = 0;
  let syncing = true;
  const synced = w.flush(true).finally(() => (syncing = false));
  while (syncing) {
    most = Math.max(most, openIn(dir, ".jsonl"));
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect(await synced).toBe(true);
  expect(most).toBeGreaterThan(0);
  expect(most).toBeLessThanOrEqual(2 + 16); // the open-file cap, plus the fsyncs in flight (SYNCS_AT_ONCE)
  await w.close(false);
});

