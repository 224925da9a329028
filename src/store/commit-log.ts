/**
 * The commit log: one append-only file for the whole process, written
 * synchronously once per event-loop turn or full batch (group commit) before any event of the
 * batch is shown to a client. It is what makes "durable before visible" cheap:
 * one `write` per loop turn whatever the number of chats, where a write per chat
 * per turn cost ~3 µs each (measured, see the README).
 *
 * Per-chat transcripts are derived from it behind (asynchronously, in batches).
 * The log is cut into segments; a segment is deleted once every transcript
 * write covering it has completed. At start, the segments a crashed process left
 * are replayed into the transcripts (lines past each transcript's last seq), then
 * deleted. Record format: `<chat_id>\t<stored line>\n` (a chat id has no tab and
 * a JSON line has no raw tab or newline).
 *
 * A failed write never leaves a partial record behind: the file is cut back to
 * its size before the write, and the caller keeps the batch to retry it.
 */
import { closeSync, fsync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { writeLatin1, writeUtf8 } from "./buffer-write.ts";
import { utf8Bound } from "./utf8-size.ts";

const TAB = 0x09;
const NEWLINE = 0x0a;
const SEGMENT = /^(\d{12})\.log$/;
const INITIAL_BUFFER_BYTES = 64 * 1024;
/** Bigger than any batch of a busy loop turn (1 000 chats streaming fill a few MiB): only a held backlog is given back. */
const MAX_KEPT_BUFFER_BYTES = 32 * 1024 * 1024;

export interface CommitLogOptions {
  dir: string;
  /** A segment at least this big is closed at the next commit and a new one started. */
  segmentBytes: number;
}

/** One record found in a segment at start: the chat and the stored line. */
export interface LogRecord {
  chatId: string;
  line: string;
}

export class CommitLog {
  #buffer = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES);
  #length = 0;
  #fd: number;
  #segment: number;
  #size = 0;
  /** Bytes of the segments this process closed (rotated away from), all told. */
  #closedBytes = 0;
  #syncing = false;
  #syncAgain = false;

  constructor(private readonly options: CommitLogOptions) {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    this.#segment = Math.max(0, ...segmentsIn(options.dir)) + 1;
    this.#fd = this.#open(this.#segment);
  }

  /** The segment number new records go to; segments below it may be retired. */
  get segment(): number {
    return this.#segment;
  }

  /** Bytes of every segment this log closed since it opened (grows by a segment at each rotation). */
  get closedBytes(): number {
    return this.#closedBytes;
  }

  /** Hot path: encodes one record into the batch. Never touches the disk. */
  append(chatId: string, line: string): void {
    const room = chatId.length + utf8Bound(line) + 2;
    if (this.#buffer.length - this.#length < room) this.#grow(room);
    this.#length += writeLatin1(this.#buffer, chatId, this.#length);
    this.#buffer[this.#length++] = TAB;
    this.#length += writeUtf8(this.#buffer, line, this.#length);
    this.#buffer[this.#length++] = NEWLINE;
  }

  get pendingBytes(): number {
    return this.#length;
  }

  /**
   * Writes the batch: when this returns, the kernel holds it. On failure the file
   * is cut back to where it was, the batch is kept for the next try, and the
   * error is thrown. Returns the segment the batch went to.
   */
  commit(): number {
    if (this.#length === 0) return this.#segment;
    let written = 0;
    try {
      while (written < this.#length) written += writeSync(this.#fd, this.#buffer, written, this.#length - written);
    } catch (e) {
      if (written > 0) ftruncateSync(this.#fd, this.#size);
      throw e;
    }
    this.#size += this.#length;
    this.#length = 0;
    // A batch that grew big (a burst, or events held through a disk fault) does not keep its buffer.
    if (this.#buffer.length > MAX_KEPT_BUFFER_BYTES) this.#buffer = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES);
    const segment = this.#segment;
    if (this.#size >= this.options.segmentBytes) this.#rotate();
    return segment;
  }

  /** Machine-crash safety: flushes the current segment to stable storage on the thread pool (coalesced). */
  sync(): void {
    if (this.#syncing) {
      this.#syncAgain = true;
      return;
    }
    this.#syncing = true;
    const fd = this.#fd;
    fsync(fd, () => {
      this.#syncing = false;
      if (this.#syncAgain) {
        this.#syncAgain = false;
        this.sync();
      }
    });
  }

  /** Deletes every segment below `segment` (their records are all in the transcripts), on the thread pool: freeing a big file's blocks is slow. */
  retireBelow(segment: number): Promise<void> {
    const old = segmentsIn(this.options.dir).filter((n) => n < segment);
    return Promise.all(old.map((n) => rm(join(this.options.dir, segmentName(n)), { force: true }))).then(() => {});
  }

  close(): void {
    closeSync(this.#fd);
  }

  #rotate(): void {
    this.#closedBytes += this.#size;
    const fd = this.#open(this.#segment + 1);
    if (!this.#syncing) closeSync(this.#fd);
    else {
      const old = this.#fd;
      fsync(old, () => closeSync(old));
    }
    this.#fd = fd;
    this.#segment++;
  }

  #open(segment: number): number {
    const fd = openSync(join(this.options.dir, segmentName(segment)), "a", 0o600);
    this.#size = fstatSync(fd).size;
    return fd;
  }

  #grow(room: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#length + room));
    this.#buffer.copy(bigger, 0, 0, this.#length);
    this.#buffer = bigger;
  }
}

function segmentName(n: number): string {
  return `${String(n).padStart(12, "0")}.log`;
}

function segmentsIn(dir: string): number[] {
  return readdirSync(dir)
    .map((name) => SEGMENT.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/**
 * The records of every segment a previous process left, oldest first. A torn
 * last record (no newline: the process died inside a write) is skipped.
 */
export function* leftoverRecords(dir: string): Generator<LogRecord> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const n of segmentsIn(dir)) {
    const text = readFileSync(join(dir, segmentName(n)), "utf8");
    const lines = text.split("\n");
    lines.pop();
    for (const record of lines) {
      const tab = record.indexOf("\t");
      if (tab > 0) yield { chatId: record.slice(0, tab), line: record.slice(tab + 1) };
    }
  }
}

/** Deletes every segment (after a start-up replay made the transcripts whole, or, clustered, unread). */
export function removeSegments(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const n of segmentsIn(dir)) rmSync(join(dir, segmentName(n)), { force: true });
}
