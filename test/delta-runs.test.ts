/**
 * Delta runs: consecutive deltas of one stream share a transcript line, and
 * reading expands them into exactly the frames clients saw live, byte for byte.
 */
import { expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../src/log.ts";
import { readTranscript, TranscriptWriter } from "../src/store/transcript.ts";
import { onCleanup, tempDir } from "./helpers.ts";

/** A writer closed after the test: an open FileHandle left to the garbage collector is an error in Bun. */
function writer(dir: string): TranscriptWriter {
  const w = new TranscriptWriter({ dir, flushMs: 5, retryMs: 50, maxLineBytes: 64 * 1024, maxOpenFiles: 4, log: createLogger("error") });
  onCleanup(async () => void (await w.close(false)));
  return w;
}

async function readBack(file: string, from = 0, to?: number): Promise<string[]> {
  const out: string[] = [];
  for await (const { line } of readTranscript(file, from, to)) out.push(line);
  return out;
}

/** Events as the hub builds them: fields in publish order, seq set last. */
function stream(): object[] {
  const events: object[] = [];
  let seq = 0;
  const add = (e: Record<string, unknown>) => events.push({ ...e, seq: ++seq });
  add({ event: "user", chat_id: "c", text: "hi", client_id: "x" });
  const texts = ["héllo", ' "quoted" ', "line\nbreak", "🙂", "\u2028", "", "tab\t", "\\"];
  for (const text of texts) add({ event: "delta", chat_id: "c", text, stream_id: "1:0", turn_id: "t" });
  for (const text of ["think", "ing"]) add({ event: "reasoning_delta", chat_id: "c", text, stream_id: "1:0", turn_id: "t" });
  add({ event: "delta", chat_id: "c", text: "other stream", stream_id: "1:1", turn_id: "t" });
  add({ event: "delta", chat_id: "c", text: "no turn", stream_id: "1:1" });
  add({ event: "delta", chat_id: "c", text: "no turn 2", stream_id: "1:1" });
  add({ event: "delta", chat_id: "c", stream_id: "1:1", text: "other field order", turn_id: "t" });
  add({ event: "stream_end", chat_id: "c", stream_id: "1:1", turn_id: "t" });
  add({ event: "turn_end", chat_id: "c", status: "done", turn_id: "t" });
  return events;
}

test("runs are expanded into the live frames byte for byte, and take far fewer lines", async () => {
  const dir = tempDir();
  const w = writer(dir);
  const events = stream();
  for (const e of events) w.append("c", (e as { seq: number }).seq, JSON.stringify(e), e);
  await w.flush();
  const file = join(dir, "c.jsonl");
  const live = events.map((e) => JSON.stringify(e));
  expect(await readBack(file)).toEqual(live);
  expect(readFileSync(file, "utf8").split("\n").filter(Boolean).length).toBeLessThan(live.length - 8);
  // A seq window cuts inside runs.
  expect(await readBack(file, 4, 10)).toEqual(live.slice(3, 10));
  await w.close(false);
});

test("a run is never longer than one batch; seqs in later batches start new lines", async () => {
  const dir = tempDir();
  const w = writer(dir);
  const live: string[] = [];
  for (let seq = 1; seq <= 40; seq++) {
    const e = { event: "delta", chat_id: "c", text: `${seq}`, stream_id: "1:0", turn_id: "t", seq };
    live.push(JSON.stringify(e));
    w.append("c", seq, live.at(-1)!, e);
    if (seq % 10 === 0) await w.flush();
  }
  expect(await readBack(join(dir, "c.jsonl"))).toEqual(live);
  expect(readFileSync(join(dir, "c.jsonl"), "utf8").split("\n").filter(Boolean)).toHaveLength(4);
  await w.close(false);
});

test("older transcripts (one event per line) read unchanged; malformed runs and duplicated seqs are skipped", async () => {
  const file = join(tempDir(), "c.jsonl");
  const old = [`{"event":"delta","chat_id":"c","text":"a","seq":1}`, `{"event":"delta","chat_id":"c","text":"b","seq":2}`];
  const bad = [
    `{"run":"delta","chat_id":"c","stream_id":"s","seq":3,"through":5,"texts":["x"]}`,
    `{"run":"delta","chat_id":"c","stream_id":"s","seq":3,"through":4,"texts":["x",4]}`,
    `{"event":"delta","chat_id":"c","text":"dup","seq":2}`,
    `{"event":"delta","chat_id":"c","text":"tor{"event":"delta","chat_id":"c","text":"c","seq":3}`,
  ];
  writeFileSync(file, [...old, ...bad, `{"event":"delta","chat_id":"c","text":"c","seq":3}`, ""].join("\n"));
  expect(await readBack(file)).toEqual([...old, `{"event":"delta","chat_id":"c","text":"c","seq":3}`]);
});

test("a delta that would push its run over the line guard starts a new line instead: nothing is dropped", async () => {
  const dir = tempDir();
  const w = writer(dir);
  // Each event fits the 64 KiB guard alone; joined into one run they would not.
  const events = [10_000, 60_000].map((n, i) => ({ event: "delta", chat_id: "c", text: "ab"[i]!.repeat(n), stream_id: "1:0", turn_id: "t", seq: i + 1 }));
  for (const e of events) w.append("c", e.seq, JSON.stringify(e), e);
  await w.flush();
  expect(await readBack(join(dir, "c.jsonl"))).toEqual(events.map((e) => JSON.stringify(e)));
});

test("a run line is byte for byte what JSON.stringify gives for the run, though its texts are encoded straight into the write buffer", async () => {
  const dir = tempDir();
  const w = writer(dir);
  // Escapes, multi-byte characters, and lone surrogates (JSON.stringify escapes them; a plain UTF-8 encoding would not).
  const texts = ['a "q" ,"stream_id":', "\\", "é🙂\u2028", "<\u0001>", "\ud800x", "y\udfff", "plain"];
  const members = [
    ...texts.map((text, i) => ({ event: "delta", chat_id: 'c"1', text, stream_id: "1:0", turn_id: "t", seq: i + 1 })),
    ...texts.map((text, i) => ({ event: "reasoning_delta", chat_id: 'c"1', text, stream_id: "1:1", seq: i + 8 })),
  ];
  for (const e of members) w.append("c", e.seq, JSON.stringify(e), e);
  await w.flush();
  const lines = readFileSync(join(dir, "c.jsonl"), "utf8").split("\n").filter(Boolean);
  expect(lines).toEqual([
    JSON.stringify({ run: "delta", chat_id: 'c"1', stream_id: "1:0", turn_id: "t", seq: 1, through: 7, texts }),
    JSON.stringify({ run: "reasoning_delta", chat_id: 'c"1', stream_id: "1:1", seq: 8, through: 14, texts }),
  ]);
  expect(await readBack(join(dir, "c.jsonl"))).toEqual(members.map((e) => JSON.stringify(e)));
  await w.close(false);
});
