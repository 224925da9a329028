/**
 * Chunked UTF-8 bytes to complete text lines, the one way for every streamed
 * input (an agent's stdout and stderr, a transcript read from an offset). A
 * chunk may end inside a line or inside a character: the unfinished tail is
 * kept for the next chunk, and a tail never ended by a newline is never returned.
 */
export class LineSplitter {
  readonly #decoder = new TextDecoder();
  #tail = "";

  /** The lines this chunk completes, without their newlines. */
  push(chunk: Uint8Array): string[] {
    const lines = (this.#tail + this.#decoder.decode(chunk, { stream: true })).split("\n");
    this.#tail = lines.pop()!;
    return lines;
  }

  /** Length of the unfinished line held so far. */
  get pending(): number {
    return this.#tail.length;
  }

  /** Forgets the unfinished line (the caller skips the rest of it). */
  dropPending(): void {
    this.#tail = "";
  }
}
