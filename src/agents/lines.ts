/**
 * Splits a byte stream into text lines, refusing any line longer than `maxBytes`
 * (it is skipped whole, never delivered in pieces).
 */
import { LineSplitter } from "../line-splitter.ts";

export async function readLines(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
  onLine: (line: string) => void,
  onOversize: (bytes: number) => void = () => {},
): Promise<void> {
  const splitter = new LineSplitter();
  let skipping = false;
  for await (const chunk of stream) {
    for (const line of splitter.push(chunk)) {
      if (skipping) skipping = false;
      else if (line.length > maxBytes) onOversize(line.length);
      else if (line.trim() !== "") onLine(line);
    }
    if (splitter.pending > maxBytes) {
      onOversize(splitter.pending);
      splitter.dropPending();
      skipping = true;
    }
  }
}
