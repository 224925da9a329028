import { describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { createLogger } from "../src/log.ts";
import { recoverTranscripts } from "../src/chat/storage.ts";
import { CommitLog } from "../src/store/commit-log.ts";
import { readTranscript, TranscriptWriter } from "../src/store/transcript.ts";
import { type Frame, isTurnEnd, startTestGateway, TestClient, tempDir, type TestGateway } from "./helpers.ts";

const quiet = createLogger("error");
const lines = (file: string) => readFileSync(file, "utf8").split("\n").filter(Boolean);
const transcriptOf = (gw: TestGateway | string, chatId: string) =>
  join(typeof gw === "string" ? gw : gw.config.data_dir, "transcripts", `${chatId}.jsonl`);

/** The transcript's events as clients saw them (runs expanded). */
async function storedEvents(file: string): Promise<Frame[]> {
  const out: Frame[] = [];
  for await (const { line } of readTranscript(file, 0)) out.push(JSON.parse(line));
  return out;
}

/** What start-up recovery writes transcripts with, in `dir`. */
function recoveryWriter(dir: string) {
  return { dir, flushMs: 1000, maxLineBytes: 64 * 1024, maxOpenFiles: 16, retryMs: 50, log: createLogger("error") };
}

async function collect(path: string, from = 0, to?: number) {
  const out: number[] = [];
  for await (const { seq } of readTranscript(path, from, to)) out.push(seq);
  return out;
}

describe("transcript writer", () => {
  const writer = (dir: string, extra: Partial<ConstructorParameters<typeof TranscriptWriter>[0]> = {}) =>
    new TranscriptWriter({ dir, flushMs: 5, retryMs: 50, maxLineBytes: 1024, maxOpenFiles: 2, log: quiet, ...extra });

  test("batches appends and writes them in order, one compact line per event", async () => {
    const dir = tempDir();
    const flushed: [string, number][] = [];
    const w = writer(dir, { onFlushed: (c, s) => flushed.push([c, s]) });
    for (let seq = 1; seq <= 5; seq++) w.append("c1", seq, JSON.stringify({ event: "delta", text: `t${seq}`, seq }));
    expect(Bun.file(join(dir, "c1.jsonl")).size).toBe(0);
    await w.flush();
    expect(lines(join(dir, "c1.jsonl")).map((l) => JSON.parse(l).seq)).toEqual([1, 2, 3, 4, 5]);
    expect(flushed).toEqual([["c1", 5]]);
    await w.close(false);
  });

  test("a synced flush resolves only once the fsyncs an earlier one started have ended", async () => {
    const w = writer(tempDir());
    w.append("c1", 1, `{"event":"user","seq":1}`);
    const ended: string[] = [];
    // The first flush takes c1 off the unsynced set and fsyncs it on the thread pool; the second finds nothing
    // new to sync, yet must not report "all on disk" (a segment retire trusts it) before that fsync ended.
    const first = w.flush(true).then((ok) => ended.push(`first ${ok}`));
    const second = w.flush(true).then((ok) => ended.push(`second ${ok}`));
    await Promise.all([first, second]);
    expect(ended).toEqual(["first true", "second true"]);
    await w.close(false);
  });

  test("a flush happens by itself on the writer's timer, and more chats than open files still all land", async () => {
    const dir = tempDir();
    const w = writer(dir);
    for (const chat of ["a", "b", "c", "d"]) w.append(chat, 1, `{"event":"user","seq":1}`);
    // Nobody calls flush: the writer's own timer must land every chat (bounded wait, not a timed assertion).
    const landed = () => ["a", "b", "c", "d"].every((chat) => existsSync(join(dir, `${chat}.jsonl`)) && lines(join(dir, `${chat}.jsonl`)).length === 1);
    for (let waited = 0; !landed() && waited < 5000; waited += 10) await Bun.sleep(10);
    for (const chat of ["a", "b", "c", "d"]) expect(lines(join(dir, `${chat}.jsonl`))).toHaveLength(1);
    await w.close(false);
  });

  test("multi-byte text, batches that outgrow their buffer and reused buffers all land byte for byte", async () => {
    const dir = tempDir();
    const w = writer(dir, { maxLineBytes: 64 * 1024 });
    const sent: string[] = [];
    const pieces = ["héllo", "日本語", "🙂🚀", "x".repeat(900), "\u2028"];
    const flushes: Promise<boolean>[] = [];
    for (let seq = 1; seq <= 3000; seq++) {
      const line = JSON.stringify({ text: pieces[seq % pieces.length]!.repeat(1 + (seq % 7)), seq });
      sent.push(line);
      w.append("c", seq, line);
      // Flush while earlier writes may still be in flight, so a buffer is refilled while another is written.
      if (seq % 250 === 0) flushes.push(w.flush());
    }
    await Promise.all(flushes);
    await w.flush();
    expect(readFileSync(join(dir, "c.jsonl"), "utf8")).toBe(sent.join("\n") + "\n");
    await w.close(false);
  });

  test("a line over the size guard is refused whole; the stream goes on", async () => {
    const dir = tempDir();
    const w = writer(dir);
    w.append("c", 1, `{"text":"${"x".repeat(2000)}","seq":1}`);
    w.append("c", 2, `{"text":"ok","seq":2}`);
    await w.flush();
    expect(lines(join(dir, "c.jsonl"))).toEqual([`{"text":"ok","seq":2}`]);
    await w.close(false);
  });

  test("a torn last line is cut before the next append and never read", async () => {
    const dir = tempDir();
    const file = join(dir, "c.jsonl");
    writeFileSync(file, `{"a":1,"seq":1}\n{"a":2,"seq":2}\n{"a":3,"se`);
    expect(await collect(file)).toEqual([1, 2]);
    const w = writer(dir);
    w.append("c", 3, `{"a":3,"seq":3}`);
    await w.flush();
    expect(readFileSync(file, "utf8")).toBe(`{"a":1,"seq":1}\n{"a":2,"seq":2}\n{"a":3,"seq":3}\n`);
    await w.close(false);
  });

  test("a file's tail is checked once per process, not at every reopen after the open-file cap closed it", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "a.jsonl"), `{"seq":1}\n{"se`);
    const w = writer(dir, { maxOpenFiles: 1 });
    // Two chats through one open file: every flush closes the other chat's file and reopens its own.
    for (let seq = 2; seq <= 11; seq++) {
      for (const chat of ["a", "b"]) w.append(chat, seq, `{"seq":${seq}}`);
      expect(await w.flush()).toBe(true);
    }
    expect(w.tailChecks).toBe(2);
    expect(await collect(join(dir, "a.jsonl"))).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    expect(await collect(join(dir, "b.jsonl"))).toEqual(Array.from({ length: 10 }, (_, i) => i + 2));
    await w.close(false);
  });

  test("a sync flush also fsyncs files the open-file cap closed since they were written", async () => {
    const dir = tempDir();
    const w = writer(dir, { maxOpenFiles: 1 });
    for (const chat of ["a", "b", "c"]) {
      w.append(chat, 1, `{"seq":1}`);
      expect(await w.flush()).toBe(true);
    }
    // a and b are closed now; the sync reopens them to fsync (a missing file would make it fail).
    expect(await w.flush(true)).toBe(true);
    await w.remove("a");
    w.append("b", 2, `{"seq":2}`);
    expect(await w.flush(true)).toBe(true);
    await w.close(true);
  });

  test("start-up recovery cuts a torn transcript tail and appends exactly the log's events past the last whole line, deltas as runs", async () => {
    const root = tempDir();
    const logDir = join(root, "log");
    const file = (chatId: string) => join(root, `${chatId}.jsonl`);
    writeFileSync(file("c"), `{"seq":1}\n{"seq":2}\n{"seq":3,"te`);
    const log = new CommitLog({ dir: logDir, segmentBytes: 1 << 20 });
    for (let seq = 1; seq <= 5; seq++) log.append("c", `{"seq":${seq}}`);
    log.append("c", "not json");
    log.append("d", `{"seq":1}`);
    const deltas = Array.from({ length: 20 }, (_, i) => JSON.stringify({ event: "delta", chat_id: "e", text: `t${i + 1}`, stream_id: "1:0", turn_id: "t", seq: i + 1 }));
    for (const delta of deltas) log.append("e", delta);
    log.commit();
    log.close();
    expect(await recoverTranscripts(logDir, recoveryWriter(root), () => 0)).toBe(24);
    expect(readFileSync(file("c"), "utf8")).toBe([1, 2, 3, 4, 5].map((seq) => `{"seq":${seq}}\n`).join(""));
    expect(readFileSync(file("d"), "utf8")).toBe(`{"seq":1}\n`);
    // The deltas went in as one run line, as the live writer stores them, and read back as the frames logged.
    expect(readFileSync(file("e"), "utf8").trim().split("\n")).toHaveLength(1);
    const read: string[] = [];
    for await (const { line } of readTranscript(file("e"), 0)) read.push(line);
    expect(read).toEqual(deltas);
    expect(readdirSync(logDir)).toEqual([]);
  });

  test("recovery of more events than it writes at once loses and repeats none, runs crossing its batches included", async () => {
    const root = tempDir();
    const logDir = join(root, "log");
    const log = new CommitLog({ dir: logDir, segmentBytes: 1 << 20 });
    const deltas = Array.from({ length: 70_000 }, (_, i) => JSON.stringify({ event: "delta", chat_id: "e", text: `${i}`, stream_id: "1:0", turn_id: "t", seq: i + 1 }));
    for (const [i, delta] of deltas.entries()) {
      log.append("e", delta);
      if (i % 1000 === 999) log.commit();
    }
    log.commit();
    log.close();
    expect(await recoverTranscripts(logDir, recoveryWriter(root), () => 0)).toBe(70_000);
    const read: string[] = [];
    for await (const { line } of readTranscript(join(root, "e.jsonl"), 0)) read.push(line);
    expect(read).toEqual(deltas);
  });

  test("recovery that cannot write a transcript throws and keeps the segments; the next start recovers everything", async () => {
    const root = tempDir();
    const logDir = join(root, "log");
    const log = new CommitLog({ dir: logDir, segmentBytes: 1 << 20 });
    for (let seq = 1; seq <= 3; seq++) log.append("a", `{"seq":${seq}}`), log.append("b", `{"seq":${seq}}`);
    log.commit();
    log.close();
    mkdirSync(join(root, "b.jsonl")); // a directory where b's transcript goes: its writes fail
    await expect(recoverTranscripts(logDir, recoveryWriter(root), () => 0)).rejects.toThrow(/recovered from the commit log/);
    expect(readdirSync(logDir)).not.toEqual([]);
    rmSync(join(root, "b.jsonl"), { recursive: true });
    expect(await recoverTranscripts(logDir, recoveryWriter(root), () => 0)).toBe(3); // a's three were written the first time
    for (const chat of ["a", "b"]) expect(readFileSync(join(root, `${chat}.jsonl`), "utf8")).toBe(`{"seq":1}\n{"seq":2}\n{"seq":3}\n`);
    expect(readdirSync(logDir)).toEqual([]);
  });

  test("the reader skips corrupt lines and honours the seq window", async () => {
    const file = join(tempDir(), "c.jsonl");
    writeFileSync(file, [`{"seq":1}`, "garbage", `{"seq":2,"x":"}"}`, `{"seq":3}`, `{"seq":4}`, ""].join("\n"));
    expect(await collect(file)).toEqual([1, 2, 3, 4]);
    expect(await collect(file, 2, 3)).toEqual([2, 3]);
    expect(await collect(join(tempDir(), "missing.jsonl"))).toEqual([]);
  });
});

/** Sends one message and returns every frame of the turn (user … goal_status idle). */
async function turn(client: TestClient, chatId: string, content: string): Promise<Frame[]> {
  client.send({ type: "message", chat_id: chatId, content });
  return client.until(isTurnEnd);
}

describe("durable chats", () => {
  test("every event is in the transcript, written with no client subscribed, and rows record chat and turn", async () => {
    const gw = await startTestGateway({ echo_chunk_size: 2, echo_delay_ms: 1 });
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    client.send({ type: "message", chat_id: ready.chat_id, content: "abcdef" });
    await client.next();
    client.ws.close();
    const again = await TestClient.ready(gw.wsUrl("unix"));
    again.client.send({ type: "attach", chat_id: ready.chat_id, since_seq: 0 });
    expect((await again.client.next()).event).toBe("attached");
    const replayed = await again.client.until(isTurnEnd);
    expect(replayed.map((f) => f.seq)).toEqual(replayed.map((_, i) => i + 1));
    expect(replayed.filter((f) => f.event === "delta").map((f) => f.text).join("")).toBe("abcdef");
    await Bun.sleep(gw.config.transcript_flush_ms * 3);
    expect(await storedEvents(transcriptOf(gw, ready.chat_id))).toEqual(replayed);
    const db = new Database(join(gw.config.data_dir, "agentgate.db"), { readonly: true });
    expect(db.query("select status from turns").all()).toEqual([{ status: "done" }]);
    expect(db.query("select id, preview, agent from chats").all()).toEqual([{ id: ready.chat_id, preview: "abcdef", agent: "echo" }]);
    db.close();
  });

  test("closed commit-log segments stay until they add up to commit_log_retire_bytes, then go together once the transcripts hold them", async () => {
    const KiB = 1024;
    const gw = await startTestGateway({ commit_log_segment_bytes: 64 * KiB, commit_log_retire_bytes: 192 * KiB, commit_batch_bytes: 4 * KiB, transcript_flush_ms: 1 });
    const logDir = join(gw.config.data_dir, "commit-log");
    const segments = () => readdirSync(logDir).filter((n) => n.endsWith(".log")).sort();
    const title = "t".repeat(1000);
    /** Publishes ~`kib` KiB in one chat and waits (bounded) for it to be visible. */
    const publish = async (kib: number) => {
      for (let i = 0; i < kib; i++) gw.hub.publish({ event: "session_updated", chat_id: "c", scope: "metadata", title });
      await gw.hub.whenVisible(5000);
    };
    await publish(150);
    // Two segments closed (128 KiB), under the retire size: both kept.
    expect(segments().length).toBe(3);
    await publish(100);
    // A third closed segment brings them to 192 KiB: all three are deleted once the transcript holds them.
    for (let i = 0; i < 200 && segments().length > 1; i++) await Bun.sleep(10);
    expect(segments().length).toBe(1);
    expect(segments()[0]).toBe("000000000004.log");
  });

  test("seq and history survive a restart; numbering continues without a gap after a clean stop", async () => {
    const dir = tempDir();
    const first = await startTestGateway({ data_dir: dir });
    const a = await TestClient.ready(first.wsUrl("tcp"));
    const before = await turn(a.client, a.ready.chat_id, "before restart");
    await first.stop();

    const second = await startTestGateway({ data_dir: dir });
    const b = await TestClient.ready(second.wsUrl("tcp"));
    b.client.send({ type: "attach", chat_id: a.ready.chat_id, since_seq: 0 });
    expect(await b.client.next()).toEqual({ event: "attached", chat_id: a.ready.chat_id, latest_seq: before.length });
    expect(await b.client.until(isTurnEnd)).toEqual(before);
    const after = await turn(b.client, a.ready.chat_id, "after restart");
    expect(after[0]!.seq).toBe(before.length + 1);
  });

  test("resume from any seq: file only, and across the file and the transcript's queued batch while the chat streams", async () => {
    const gw = await startTestGateway({ echo_chunk_size: 1, echo_delay_ms: 1, transcript_flush_ms: 2 });
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    const chat_id = ready.chat_id;
    const all = await turn(client, chat_id, "0123456789".repeat(6));
    for (const since of [0, 5, all.length - 3, all.length]) {
      const r = await TestClient.ready(gw.wsUrl("unix"));
      r.client.send({ type: "attach", chat_id, since_seq: since });
      await r.client.next();
      if (since < all.length) expect(await r.client.until((f) => f.seq === all.length)).toEqual(all.slice(since));
      await r.client.expectQuiet();
    }
    client.send({ type: "message", chat_id, content: "x".repeat(300) });
    await client.until((f) => f.event === "delta" && f.seq > all.length + 20);
    const late = await TestClient.ready(gw.wsUrl("unix"));
    late.client.send({ type: "attach", chat_id, since_seq: 3 });
    await late.client.next();
    const live = await client.until(isTurnEnd);
    const resumed = await late.client.until((f) => f.seq === live.at(-1)!.seq);
    expect(resumed.map((f) => f.seq)).toEqual(Array.from({ length: live.at(-1)!.seq - 3 }, (_, i) => i + 4));
  });

  test("chaos: a client dropping every few hundred events and resuming from its last seq reassembles the transcript's text", async () => {
    const gw = await startTestGateway({ echo_chunk_size: 1, echo_repeat: 5000, transcript_flush_ms: 5 });
    let { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    const chat_id = ready.chat_id;
    client.send({ type: "message", chat_id, content: "z" });
    const seen: Frame[] = [];
    for (let drops = 0; drops < 60; drops++) {
      const batch = await client.until((f) => isTurnEnd(f) || f.seq % 317 === 0, 20_000);
      seen.push(...batch.filter((f) => f.seq !== undefined));
      if (isTurnEnd(batch.at(-1)!)) break;
      client.ws.close();
      ({ client } = await TestClient.ready(gw.wsUrl(drops % 2 ? "tcp" : "unix")));
      client.send({ type: "attach", chat_id, since_seq: seen.at(-1)!.seq });
      expect((await client.next()).event).toBe("attached");
    }
    expect(seen.map((f) => f.seq)).toEqual(seen.map((_, i) => i + 1));
    const text = (frames: Frame[]) => frames.filter((f) => f.event === "delta").map((f) => f.text).join("");
    await Bun.sleep(30);
    expect(text(seen)).toBe("z".repeat(5000));
    expect(text(await storedEvents(transcriptOf(gw, chat_id)))).toBe(text(seen));
  }, 60_000);

  test("turns left running by a killed process are closed as interrupted at the next start", async () => {
    const dir = tempDir();
    const db = new Database(join(dir, "agentgate.db"), { create: true });
    const first = await startTestGateway({ data_dir: dir });
    await first.stop();
    db.run("insert into chats (id, created_at, updated_at, metadata, last_seq, agent) values ('crashed', 0, 0, '{}', 1024, 'echo')");
    db.run("insert into turns (id, chat_id, status, started_at) values ('t-1', 'crashed', 'running', 0)");
    appendFileSync(transcriptOf(dir, "crashed"), `{"event":"delta","chat_id":"crashed","text":"partial","seq":1}\n{"event":"delta","chat_id":"cra`);
    const second = await startTestGateway({ data_dir: dir });
    const { client } = await TestClient.ready(second.wsUrl("tcp"));
    client.send({ type: "attach", chat_id: "crashed", since_seq: 0 });
    expect(await client.next()).toEqual({ event: "attached", chat_id: "crashed", latest_seq: 1026 });
    const replayed = await client.until(isTurnEnd);
    expect(replayed).toEqual([
      { event: "delta", chat_id: "crashed", text: "partial", seq: 1 },
      { event: "turn_end", chat_id: "crashed", goal_state: { active: false }, status: "interrupted", turn_id: "t-1", seq: 1025 },
      { event: "goal_status", chat_id: "crashed", status: "idle", turn_id: "t-1", seq: 1026 },
    ]);
    expect(db.query("select status from turns").get()).toEqual({ status: "interrupted" });
    db.close();
  });
});
