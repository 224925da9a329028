/**
 * Splits a byte stream into text lines, refusing any line longer than `maxBytes`
 * (it is skipped whole, never delivered in pieces).
 */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
  onLine: (line: string) => void,
  onOversize: (bytes: number) => void = () => {},
): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  let skipping = false;
  for await (const chunk of stream) {
    const parts = (buffered + decoder.decode(chunk, { stream: true })).split("\n");
    buffered = parts.pop()!;
    for (const line of parts) {
      if (skipping) skipping = false;
      else if (line.length > maxBytes) onOversize(line.length);
      else if (line.trim() !== "") onLine(line);
    }
    if (buffered.length > maxBytes) {
      onOversize(buffered.length);
      buffered = "";
      skipping = true;
    }
  }
}
