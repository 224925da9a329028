/**
 * Per-chat JSONL transcripts: `<data_dir>/transcripts/<chat_id>.jsonl`, one
 * compact JSON event per line, each with its `seq`.
 *
 * Writing is batched off the hot path: `append` only queues the already
 * serialized frame; a timer writes each chat's batch with one write call within
 * `flushMs`, and turn ends flush their chat at once. Writes go to the page cache
 * synchronously (ordered, no interleaving); fsync, when the policy asks for it,
 * runs on libuv's pool and never blocks the event loop.
 *
 * Crash safety: a torn last line (no trailing newline) is cut off the first time
 * this process opens the file, before anything is appended; readers ignore it
 * anyway. A line over the size guard is refused whole and logged.
 */
import { closeSync, fstatSync, fsync, fsyncSync, ftruncateSync, mkdirSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log.ts";

export type FsyncPolicy = "batch" | "turn" | "never";

export interface TranscriptOptions {
  dir: string;
  flushMs: number;
  fsync: FsyncPolicy;
  maxLineBytes: number;
  maxOpenFiles: number;
  log: Logger;
  /** Told after each write which seq of a chat is now in the file. */
  onFlushed?: (chatId: string, seq: number) => void;
}

interface Pending {
  frames: string[];
  lastSeq: number;
}

const NEWLINE = 0x0a;
const TAIL_SCAN_BYTES = 64 * 1024;

export function transcriptPath(dir: string, chatId: string): string {
  return join(dir, `${chatId}.jsonl`);
}

export class TranscriptWriter {
  readonly #pending = new Map<string, Pending>();
  /** Open descriptors, least recently used first (Map keeps insertion order). */
  readonly #fds = new Map<string, number>();
  #timer: Timer | undefined;

  constructor(private readonly options: TranscriptOptions) {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  }

  /** Hot path: queue one serialized event. Never touches the disk. */
  append(chatId: string, seq: number, frame: string): void {
    // Cheap bound first: a UTF-16 string never takes more than 3 bytes per unit in UTF-8.
    if (frame.length * 3 >= this.options.maxLineBytes && Buffer.byteLength(frame) + 1 > this.options.maxLineBytes) {
      this.options.log.error("transcript line refused: over the size guard", { chat_id: chatId, seq, bytes: Buffer.byteLength(frame) });
      return;
    }
    let pending = this.#pending.get(chatId);
    if (!pending) this.#pending.set(chatId, (pending = { frames: [], lastSeq: 0 }));
    pending.frames.push(frame);
    pending.lastSeq = seq;
    this.#timer ??= setTimeout(() => this.flush(), this.options.flushMs);
  }

  /** Writes every queued batch. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const chatId of [...this.#pending.keys()]) this.#write(chatId);
  }

  /** Writes the chat's batch now (a turn ended); with fsync "turn" or "batch", resolves once it is on disk. */
  flushChat(chatId: string): Promise<void> {
    const fd = this.#write(chatId);
    return fd === undefined || this.options.fsync === "never" ? Promise.resolve() : this.#sync(fd);
  }

  /** Drops a chat's transcript entirely (the chat was deleted). */
  remove(chatId: string): void {
    this.#pending.delete(chatId);
    this.#close(chatId);
    rmSync(transcriptPath(this.options.dir, chatId), { force: true });
  }

  /** Shutdown: write everything, make it durable unless the policy says never, close files. */
  close(): void {
    this.flush();
    for (const [chatId, fd] of this.#fds) {
      if (this.options.fsync !== "never") fsyncSync(fd);
      this.#close(chatId);
    }
  }

  #write(chatId: string): number | undefined {
    const pending = this.#pending.get(chatId);
    if (!pending) return undefined;
    this.#pending.delete(chatId);
    const fd = this.#fd(chatId);
    const data = Buffer.from(pending.frames.join("\n") + "\n");
    try {
      for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
    } catch (e) {
      this.options.log.error("transcript write failed", { chat_id: chatId, error: (e as Error).message });
      this.#close(chatId);
      return undefined;
    }
    if (this.options.fsync === "batch") void this.#sync(fd);
    this.options.onFlushed?.(chatId, pending.lastSeq);
    return fd;
  }

  #fd(chatId: string): number {
    const open = this.#fds.get(chatId);
    if (open !== undefined) {
      this.#fds.delete(chatId);
      this.#fds.set(chatId, open);
      return open;
    }
    if (this.#fds.size >= this.options.maxOpenFiles) this.#close(this.#fds.keys().next().value!);
    const fd = openSync(transcriptPath(this.options.dir, chatId), "a+", 0o600);
    this.#repairTornTail(fd, chatId);
    this.#fds.set(chatId, fd);
    return fd;
  }

  /** Cuts a last line that has no newline (a write the previous process never finished). */
  #repairTornTail(fd: number, chatId: string): void {
    const size = fstatSync(fd).size;
    if (size === 0) return;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    if (last[0] === NEWLINE) return;
    let keep = 0;
    for (let end = size; end > 0 && keep === 0; end -= TAIL_SCAN_BYTES) {
      const start = Math.max(0, end - TAIL_SCAN_BYTES);
      const chunk = Buffer.alloc(end - start);
      readSync(fd, chunk, 0, chunk.length, start);
      const nl = chunk.lastIndexOf(NEWLINE);
      if (nl !== -1) keep = start + nl + 1;
    }
    ftruncateSync(fd, keep);
    this.options.log.warn("transcript: cut a torn last line", { chat_id: chatId, bytes: size - keep });
  }

  #sync(fd: number): Promise<void> {
    return new Promise((resolve) => fsync(fd, () => resolve()));
  }

  #close(chatId: string): void {
    const fd = this.#fds.get(chatId);
    if (fd === undefined) return;
    this.#fds.delete(chatId);
    closeSync(fd);
  }
}

/** The `seq` of a transcript line: the fast path reads the trailing field the hub always writes last. */
export function seqOf(line: string): number | undefined {
  const m = /"seq":(\d+)\}$/.exec(line);
  if (m) return Number(m[1]);
  try {
    const seq = (JSON.parse(line) as { seq?: unknown }).seq;
    return typeof seq === "number" ? seq : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Streams the complete lines of a transcript whose seq lies in [fromSeq, toSeq],
 * in file order, in chunks so a long file never blocks the event loop for long.
 * Unparseable lines and a torn last line are skipped.
 */
export async function* readTranscript(path: string, fromSeq: number, toSeq = Number.POSITIVE_INFINITY): AsyncGenerator<{ seq: number; line: string }> {
  const file = Bun.file(path);
  if (!(await file.exists())) return;
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of file.stream()) {
    const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n");
    rest = lines.pop()!;
    for (const line of lines) {
      const seq = seqOf(line);
      if (seq === undefined || seq < fromSeq) continue;
      if (seq > toSeq) return;
      yield { seq, line };
    }
  }
}
