/**
 * The one line splitter (src/line-splitter.ts) and the agent's bounded line
 * reader built on it: chunks that end inside a line or inside a UTF-8 character,
 * an oversize line skipped whole, an unterminated tail never delivered.
 */
import { expect, test } from "bun:test";
import { readLines } from "../src/agents/lines.ts";
import { LineSplitter } from "../src/line-splitter.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const streamOf = (chunks: Uint8Array[]) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(c);
      controller.close();
    },
  });

test("a line split across chunks, even inside a character, comes out whole; the unterminated tail is held", () => {
  const all = bytes("héllo\nwörld\ntail");
  const splitter = new LineSplitter();
  const lines = [...splitter.push(all.slice(0, 2)), ...splitter.push(all.slice(2, 9)), ...splitter.push(all.slice(9))];
  expect(lines).toEqual(["héllo", "wörld"]);
  expect(splitter.pending).toBe(4);
});

test("readLines skips an oversize line whole, even when it spans chunks, and delivers the next one; blank lines and the tail are dropped", async () => {
  const got: string[] = [];
  const oversize: number[] = [];
  const long = "x".repeat(40);
  const chunks = [bytes(`ok\n${long.slice(0, 30)}`), bytes(`${long.slice(30)}\n\nnext\n`), bytes(`${"y".repeat(12)}\nlast`)];
  await readLines(streamOf(chunks), 10, (line) => got.push(line), (n) => oversize.push(n));
  expect(got).toEqual(["ok", "next"]);
  expect(oversize).toEqual([30, 12]);
});
