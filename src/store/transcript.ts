/**
 * Per-chat JSONL transcripts: `<data_dir>/transcripts/<chat_id>.jsonl`, one
 * compact JSON event per line, each with its `seq`.
 *
 * Writing is batched and off the event loop: `append` encodes the already
 * serialized frame straight into the chat's batch buffer (UTF-8, newline-ended);
 * a timer hands each chat's batch to a per-chat chain of asynchronous file
 * operations (open or create, write, fsync by policy, close) that run on the I/O
 * thread pool in order. A turn end flushes its chat at once. The event loop never
 * waits for the disk.
 *
 * Why bytes and not a list of strings: under load a batch holds thousands of
 * frames per second per chat. Kept as strings they outlive the young generation
 * and had to be joined and converted again at write time; the 1 000-chat bench
 * spent more of the server's time on that than on the write itself. A chat's
 * batch buffer is reused once its write is done (two per busy chat, no garbage).
 *
 * Crash safety: a torn last line (no trailing newline) is cut the first time this
 * process opens the file, before anything is appended; readers ignore it anyway.
 * A line over the size guard is refused whole and logged.
 */
import { mkdirSync } from "node:fs";
import { type FileHandle, open, rm } from "node:fs/promises";
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

/** A chat's lines waiting to be written: `length` bytes of `bytes`, the last with seq `lastSeq`. */
interface Pending {
  bytes: Buffer;
  length: number;
  lastSeq: number;
}

/** One chat's file: its handle once open, the chain its operations run on, in order, and a batch buffer to reuse. */
interface ChatFile {
  handle?: FileHandle;
  chain: Promise<void>;
  spare?: Buffer;
}

const NEWLINE = 0x0a;
const TAIL_SCAN_BYTES = 64 * 1024;
/** A new batch buffer: a chat streaming 1 000 deltas/s (~200-byte lines) fills about 4 KiB per 20 ms flush. */
const BATCH_BYTES = 16 * 1024;
/** Buffers up to this size are kept for the chat's next batch (at most one per open file); bigger ones are dropped. */
const SPARE_MAX_BYTES = 64 * 1024;
/** UTF-8 never takes more than 3 bytes per UTF-16 code unit. */
const MAX_UTF8_PER_UNIT = 3;

export function transcriptPath(dir: string, chatId: string): string {
  return join(dir, `${chatId}.jsonl`);
}

export class TranscriptWriter {
  readonly #pending = new Map<string, Pending>();
  /** Chat files, least recently written first (Map keeps insertion order). */
  readonly #files = new Map<string, ChatFile>();
  /** Files being closed: a reopen queues behind the close so writes never reorder. */
  readonly #closing = new Map<string, Promise<void>>();
  #timer: Timer | undefined;

  constructor(private readonly options: TranscriptOptions) {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  }

  /** Hot path: encode one serialized event into the chat's batch. Never touches the disk. */
  append(chatId: string, seq: number, frame: string): void {
    const worstCase = frame.length * MAX_UTF8_PER_UNIT + 1;
    // The exact size is only worked out when the cheap bound says the line might be over the guard.
    if (worstCase > this.options.maxLineBytes && Buffer.byteLength(frame) + 1 > this.options.maxLineBytes) {
      this.options.log.error("transcript line refused: over the size guard", { chat_id: chatId, seq, bytes: Buffer.byteLength(frame) });
      return;
    }
    const pending = this.#pendingWithRoom(chatId, worstCase);
    pending.length += pending.bytes.write(frame, pending.length);
    pending.bytes[pending.length++] = NEWLINE;
    pending.lastSeq = seq;
    this.#timer ??= setTimeout(() => this.flush(), this.options.flushMs);
  }

  /** Hands every queued batch to its chat's chain; resolves when all are written. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return Promise.all([...this.#pending.keys()].map((chatId) => this.flushChat(chatId, false))).then(() => {});
  }

  /** Writes the chat's batch now; resolves once written (and fsynced, unless the policy is never). */
  flushChat(chatId: string, turnEnded = true): Promise<void> {
    const pending = this.#pending.get(chatId);
    const sync = this.options.fsync === "batch" || (turnEnded && this.options.fsync === "turn");
    if (!pending) return sync ? this.#enqueue(chatId, (h) => h.sync()) : (this.#files.get(chatId)?.chain ?? Promise.resolve());
    this.#pending.delete(chatId);
    return this.#enqueue(chatId, async (handle, file) => {
      for (let written = 0; written < pending.length; ) written += (await handle.write(pending.bytes, written, pending.length - written)).bytesWritten;
      if (sync) await handle.sync();
      if (pending.bytes.length <= SPARE_MAX_BYTES) file.spare = pending.bytes;
      this.options.onFlushed?.(chatId, pending.lastSeq);
    });
  }

  /** Drops a chat's transcript entirely (the chat was deleted). */
  async remove(chatId: string): Promise<void> {
    this.#pending.delete(chatId);
    await this.#close(chatId);
    await rm(transcriptPath(this.options.dir, chatId), { force: true });
  }

  /** Shutdown: write everything, make it durable unless the policy says never, close files. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    await Promise.all([...this.#pending.keys()].map((chatId) => this.flushChat(chatId)));
    await Promise.all([...this.#files.keys()].map((chatId) => this.#close(chatId)));
  }

  /** The chat's batch, with room for `bytes` more; its buffer is the chat's spare one when there is one. */
  #pendingWithRoom(chatId: string, bytes: number): Pending {
    let pending = this.#pending.get(chatId);
    if (!pending) {
      const file = this.#files.get(chatId);
      const buffer = file?.spare ?? Buffer.allocUnsafe(Math.max(BATCH_BYTES, bytes));
      if (file) file.spare = undefined;
      this.#pending.set(chatId, (pending = { bytes: buffer, length: 0, lastSeq: 0 }));
    }
    if (pending.bytes.length - pending.length < bytes) {
      const bigger = Buffer.allocUnsafe(Math.max(pending.bytes.length * 2, pending.length + bytes));
      pending.bytes.copy(bigger, 0, 0, pending.length);
      pending.bytes = bigger;
    }
    return pending;
  }

  /** Runs `op` on the chat's open file after everything queued before it. Failures are logged, never thrown. */
  #enqueue(chatId: string, op: (handle: FileHandle, file: ChatFile) => Promise<unknown>): Promise<void> {
    const file = this.#touch(chatId);
    file.chain = file.chain
      .then(async () => {
        file.handle ??= await this.#openRepaired(chatId);
        await op(file.handle, file);
      })
      .catch((e: unknown) => this.options.log.error("transcript write failed", { chat_id: chatId, error: String(e) }));
    return file.chain;
  }

  /** The chat's file entry, now the most recently used; the least recent beyond the cap is closed. */
  #touch(chatId: string): ChatFile {
    let file = this.#files.get(chatId);
    if (file) this.#files.delete(chatId);
    else {
      if (this.#files.size >= this.options.maxOpenFiles) void this.#close(this.#files.keys().next().value!);
      file = { chain: this.#closing.get(chatId) ?? Promise.resolve() };
    }
    this.#files.set(chatId, file);
    return file;
  }

  /** Closes the chat's file after its queued work; a later write reopens it behind this close. */
  #close(chatId: string): Promise<void> {
    const file = this.#files.get(chatId);
    if (!file) return this.#closing.get(chatId) ?? Promise.resolve();
    this.#files.delete(chatId);
    const closed = file.chain.then(() => file.handle?.close()).catch(() => {});
    this.#closing.set(chatId, closed);
    void closed.then(() => this.#closing.get(chatId) === closed && this.#closing.delete(chatId));
    return closed;
  }

  async #openRepaired(chatId: string): Promise<FileHandle> {
    const handle = await open(transcriptPath(this.options.dir, chatId), "a+", 0o600);
    await this.#repairTornTail(handle, chatId);
    return handle;
  }

  /** Cuts a last line that has no newline (a write the previous process never finished). */
  async #repairTornTail(handle: FileHandle, chatId: string): Promise<void> {
    const { size } = await handle.stat();
    if (size === 0) return;
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    if (last[0] === NEWLINE) return;
    let keep = 0;
    for (let end = size; end > 0 && keep === 0; end -= TAIL_SCAN_BYTES) {
      const start = Math.max(0, end - TAIL_SCAN_BYTES);
      const chunk = Buffer.alloc(end - start);
      await handle.read(chunk, 0, chunk.length, start);
      const nl = chunk.lastIndexOf(NEWLINE);
      if (nl !== -1) keep = start + nl + 1;
    }
    await handle.truncate(keep);
    this.options.log.warn("transcript: cut a torn last line", { chat_id: chatId, bytes: size - keep });
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
