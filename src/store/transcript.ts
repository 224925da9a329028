/**
 * Per-chat JSONL transcripts: `<data_dir>/transcripts/<chat_id>.jsonl`, one
 * compact JSON event per line, each with its `seq`; consecutive deltas of one
 * stream share a line as a run (see delta-runs.ts).
 *
 * They are derived behind the commit log (which already made each event
 * durable before any client saw it): `append` encodes an event into the chat's
 * batch (UTF-8, newline-ended); a timer hands each chat's batch to a per-chat
 * chain of asynchronous file operations (open or create, write, fsync when asked,
 * close) on the I/O thread pool, in order. The event loop never waits for disk.
 *
 * Why bytes and not a list of strings: under load a batch holds thousands of
 * frames per second per chat; kept as strings they outlive the young generation.
 * A chat's batch buffer is reused once its write is done.
 *
 * Faults: a write that fails (disk full, I/O error) is cut back to the file's
 * size before it, and the batch goes back in front of the chat's queue to be
 * retried; `onFlushed` only ever reports what is in the file, so the ring keeps
 * everything else. A torn last line is cut the first time the file is opened.
 * A line over the size guard is refused whole and logged (the hub refuses such
 * events before they get a seq, so this is a last guard).
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import { appendFile, type FileHandle, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { LineSplitter } from "../line-splitter.ts";
import { metrics } from "../metrics/metrics.ts";
import type { Logger } from "../log.ts";
import { MAX_JSON_BYTES_PER_UNIT, utf8Bound, utf8Exceeds } from "./utf8-size.ts";
import { asRun, continues, type DeltaRun, encodeRun, expandRun, runMember, startRun } from "./delta-runs.ts";

export interface TranscriptOptions {
  dir: string;
  flushMs: number;
  maxLineBytes: number;
  maxOpenFiles: number;
  /** After a failed write, the batch is tried again this much later. */
  retryMs: number;
  /** A sparse index entry (first seq of a batch → its byte offset) is kept about every this many bytes. */
  indexEveryBytes?: number;
  log: Logger;
  /** Told after each write which seq of a chat is now in the file. */
  onFlushed?: (chatId: string, seq: number) => void;
}

/** A chat's lines waiting to be written: `length` bytes of `bytes`, then the open run; the last seq is `lastSeq`. */
interface Pending {
  bytes: Buffer;
  length: number;
  firstSeq: number;
  lastSeq: number;
  run?: DeltaRun;
  runChars: number;
}

/** One chat's file: its handle once open (and its size), the chain its operations run on. */
interface ChatFile {
  handle?: FileHandle;
  size: number;
  /** Offset of the last index entry written for the file (or its size when opened). */
  indexed: number;
  chain: Promise<boolean>;
}

const NEWLINE = 0x0a;
const TAIL_SCAN_BYTES = 64 * 1024;
/** What a run line adds per member besides its text: the quotes and comma around it, and its share of the seq range. */
const RUN_MEMBER_OVERHEAD = 8;
/** A new batch buffer: a chat streaming 1 000 deltas/s fills a few KiB per 20 ms flush (less with runs). */
const BATCH_BYTES = 16 * 1024;
/** Written batch buffers up to this size go back to the writer's pool; bigger ones are dropped. */
const SPARE_MAX_BYTES = 64 * 1024;
/**
 * The pool of written batch buffers any chat's next batch takes from, up to this
 * many bytes. Shared, because a chat's own buffer is often still being written when
 * its next event arrives: with a buffer per file, 1 000 streaming chats allocated a
 * fresh 16 KiB per chat per flush, and the kernel faulted every page of it in again
 * (most of the gateway's page faults under that load).
 */
const POOL_MAX_BYTES = 32 * 1024 * 1024;
const INDEX_EVERY_BYTES = 64 * 1024;

export function transcriptPath(dir: string, chatId: string): string {
  return join(dir, `${chatId}.jsonl`);
}

/** The sparse seq → offset index beside a transcript: lines of `<seq> <offset>`, a hint checked on use. */
export function indexPath(transcript: string): string {
  return `${transcript}.idx`;
}

export class TranscriptWriter {
  readonly #pending = new Map<string, Pending>();
  /** Chat files, least recently written first (Map keeps insertion order). */
  readonly #files = new Map<string, ChatFile>();
  /** Files being closed: a reopen queues behind the close so writes never reorder. */
  readonly #closing = new Map<string, Promise<boolean>>();
  #timer: Timer | undefined;
  /** Batch buffers whose write is done, ready for reuse. */
  readonly #pool: Buffer[] = [];
  #poolBytes = 0;

  constructor(private readonly options: TranscriptOptions) {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  }

  /**
   * Hot path: adds one serialized event to the chat's batch; `event` (the same
   * event as an object) lets a delta join the open run. Never touches the disk.
   */
  append(chatId: string, seq: number, line: string, event?: object): void {
    const pending = this.#pendingOf(chatId);
    const member = event && runMember(event);
    // The run must stay under the line guard with the newcomer in it (text counted at a JSON escape's worst).
    const joined = member ? pending.runChars + member.text.length + RUN_MEMBER_OVERHEAD : 0;
    if (member && pending.run && continues(pending.run, member) && joined * MAX_JSON_BYTES_PER_UNIT < this.options.maxLineBytes) {
      pending.run.texts.push(member.text);
      pending.run.through = seq;
      pending.runChars = joined;
    } else {
      this.#closeRun(chatId, pending);
      if (member) {
        pending.run = startRun(member, line);
        pending.runChars = line.length;
      } else this.#encode(chatId, pending, seq, line);
    }
    pending.lastSeq = seq;
    pending.firstSeq ||= seq;
    this.#timer ??= setTimeout(() => void this.flush(), this.options.flushMs);
  }

  /** Hands every queued batch to its chat's chain; resolves true when all are written (and fsynced when `sync`). */
  flush(sync = false): Promise<boolean> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // Open files too when syncing (their earlier writes need the fsync); otherwise only chats with a batch.
    const chats = sync ? [...new Set([...this.#pending.keys(), ...this.#files.keys()])] : [...this.#pending.keys()];
    return Promise.all(chats.map((chatId) => this.#write(chatId, sync))).then((oks) => oks.every(Boolean));
  }

  /** Drops a chat's transcript entirely (the chat was deleted). */
  async remove(chatId: string): Promise<void> {
    this.#pending.delete(chatId);
    await this.#close(chatId);
    await rm(transcriptPath(this.options.dir, chatId), { force: true });
    await rm(indexPath(transcriptPath(this.options.dir, chatId)), { force: true });
  }

  /** Shutdown: write everything (fsynced when `sync`), close files. True when all landed. */
  async close(sync: boolean): Promise<boolean> {
    const ok = await this.flush(sync);
    await Promise.all([...this.#files.keys()].map((chatId) => this.#close(chatId)));
    return ok;
  }

  #write(chatId: string, sync: boolean): Promise<boolean> {
    const pending = this.#pending.get(chatId);
    if (pending) {
      this.#closeRun(chatId, pending);
      this.#pending.delete(chatId);
    }
    if (!pending && !sync) return this.#files.get(chatId)?.chain ?? Promise.resolve(true);
    return this.#enqueue(chatId, async (handle, file) => {
      if (pending && pending.length > 0) await this.#writeBatch(chatId, handle, file, pending);
      if (sync) await handle.sync();
      if (pending) this.options.onFlushed?.(chatId, pending.lastSeq);
    });
  }

  /** Writes one batch whole, or cuts the file back to its size before and requeues the batch. */
  async #writeBatch(chatId: string, handle: FileHandle, file: ChatFile, pending: Pending): Promise<void> {
    const started = performance.now();
    try {
      for (let written = 0; written < pending.length; ) written += (await handle.write(pending.bytes, written, pending.length - written)).bytesWritten;
    } catch (e) {
      metrics.storageFault("transcript");
      await handle.truncate(file.size).catch(() => {});
      this.#requeue(chatId, pending);
      throw e;
    }
    metrics.transcriptWritten((performance.now() - started) / 1000, pending.length);
    const offset = file.size;
    file.size += pending.length;
    if (offset >= file.indexed + (this.options.indexEveryBytes ?? INDEX_EVERY_BYTES)) {
      file.indexed = offset;
      // Only a hint (readers check it): a failure here loses nothing.
      await appendFile(indexPath(transcriptPath(this.options.dir, chatId)), `${pending.firstSeq} ${offset}\n`, { mode: 0o600 }).catch(() => {});
    }
    this.#recycle(pending.bytes);
  }

  /** A failed batch goes back in front of whatever the chat queued since, and is retried later. */
  #requeue(chatId: string, failed: Pending): void {
    const newer = this.#pending.get(chatId);
    if (newer) {
      const bytes = Buffer.allocUnsafe(failed.length + newer.bytes.length);
      failed.bytes.copy(bytes, 0, 0, failed.length);
      newer.bytes.copy(bytes, failed.length, 0, newer.length);
      newer.bytes = bytes;
      newer.length += failed.length;
      newer.firstSeq = failed.firstSeq;
    } else this.#pending.set(chatId, failed);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.flush(), this.options.retryMs);
  }

  #pendingOf(chatId: string): Pending {
    let pending = this.#pending.get(chatId);
    if (!pending) {
      const pooled = this.#pool.pop();
      if (pooled) this.#poolBytes -= pooled.length;
      this.#pending.set(chatId, (pending = { bytes: pooled ?? Buffer.allocUnsafe(BATCH_BYTES), length: 0, firstSeq: 0, lastSeq: 0, runChars: 0 }));
    }
    return pending;
  }

  /** A written batch's buffer back to the pool, while the pool has room for it. */
  #recycle(bytes: Buffer): void {
    if (bytes.length > SPARE_MAX_BYTES || this.#poolBytes + bytes.length > POOL_MAX_BYTES) return;
    this.#pool.push(bytes);
    this.#poolBytes += bytes.length;
  }

  #closeRun(chatId: string, pending: Pending): void {
    const run = pending.run;
    if (!run) return;
    pending.run = undefined;
    this.#encode(chatId, pending, run.through, encodeRun(run));
  }

  /** Encodes one line into the batch, unless it is over the size guard. */
  #encode(chatId: string, pending: Pending, seq: number, line: string): void {
    if (utf8Exceeds(line, this.options.maxLineBytes, 1)) {
      this.options.log.error("transcript line refused: over the size guard", { chat_id: chatId, seq, bytes: Buffer.byteLength(line) });
      return;
    }
    // Grown only when the line may not fit exactly: a run line of ASCII text must not triple the buffer.
    if (utf8Exceeds(line, pending.bytes.length - pending.length, 1)) {
      const bigger = Buffer.allocUnsafe(Math.max(pending.bytes.length * 2, pending.length + utf8Bound(line) + 1));
      pending.bytes.copy(bigger, 0, 0, pending.length);
      pending.bytes = bigger;
    }
    pending.length += pending.bytes.write(line, pending.length);
    pending.bytes[pending.length++] = NEWLINE;
  }

  /** Runs `op` on the chat's open file after everything queued before it. Failures are logged and resolve false. */
  #enqueue(chatId: string, op: (handle: FileHandle, file: ChatFile) => Promise<unknown>): Promise<boolean> {
    const file = this.#touch(chatId);
    file.chain = file.chain
      .then(async () => {
        file.handle ??= await this.#openRepaired(chatId, file);
        await op(file.handle, file);
        return true;
      })
      .catch((e: unknown) => {
        this.options.log.error("transcript write failed; will retry", { chat_id: chatId, error: String(e) });
        return false;
      });
    return file.chain;
  }

  /** The chat's file entry, now the most recently used; the least recent beyond the cap is closed. */
  #touch(chatId: string): ChatFile {
    let file = this.#files.get(chatId);
    if (file) this.#files.delete(chatId);
    else {
      if (this.#files.size >= this.options.maxOpenFiles) void this.#close(this.#files.keys().next().value!);
      file = { size: 0, indexed: 0, chain: (this.#closing.get(chatId) ?? Promise.resolve(true)).then(() => true) };
    }
    this.#files.set(chatId, file);
    return file;
  }

  /** Closes the chat's file after its queued work; a later write reopens it behind this close. */
  #close(chatId: string): Promise<boolean> {
    const file = this.#files.get(chatId);
    if (!file) return this.#closing.get(chatId) ?? Promise.resolve(true);
    this.#files.delete(chatId);
    const closed = file.chain.then((ok) => file.handle?.close().then(() => ok) ?? ok).catch(() => false);
    this.#closing.set(chatId, closed);
    void closed.then(() => this.#closing.get(chatId) === closed && this.#closing.delete(chatId));
    return closed;
  }

  async #openRepaired(chatId: string, file: ChatFile): Promise<FileHandle> {
    const path = transcriptPath(this.options.dir, chatId);
    const cut = repairTail(path);
    if (cut > 0) this.options.log.warn("transcript: cut a torn last line", { chat_id: chatId, bytes: cut });
    const handle = await open(path, "a+", 0o600);
    file.size = (await handle.stat()).size;
    file.indexed = file.size;
    return handle;
  }
}

/**
 * The end of the last complete line of an open file (0 when it has none), and
 * that line. Reads at most what it must from the end.
 */
function lastLine(fd: number): { keep: number; line: string } {
  const size = fstatSync(fd).size;
  let carry = Buffer.alloc(0);
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - TAIL_SCAN_BYTES);
    const chunk = Buffer.alloc(end - start);
    readSync(fd, chunk, 0, chunk.length, start);
    const joined = Buffer.concat([chunk, carry]);
    const nl = joined.lastIndexOf(NEWLINE);
    const keep = nl === -1 ? -1 : start + nl + 1;
    if (keep !== -1) {
      const prev = joined.lastIndexOf(NEWLINE, nl - 1);
      if (prev !== -1 || start === 0) return { keep, line: joined.subarray(prev + 1, nl).toString() };
    }
    carry = joined;
    end = start;
  }
  return { keep: 0, line: "" };
}

/** Runs `use` on the file opened with `flags`; `missing` when it cannot be opened (it does not exist). */
function withFile<T>(path: string, flags: string, missing: T, use: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, flags);
  } catch {
    return missing;
  }
  try {
    return use(fd);
  } finally {
    closeSync(fd);
  }
}

/** Cuts a torn last line (a write the previous process never finished); returns the bytes cut. */
export function repairTail(path: string): number {
  return withFile(path, "r+", 0, (fd) => {
    const size = fstatSync(fd).size;
    const { keep } = lastLine(fd);
    if (keep < size) ftruncateSync(fd, keep);
    return size - keep;
  });
}

/** The last seq of a transcript (a run's last), ignoring a torn tail; 0 when there is none. */
export function lastSeqIn(path: string): number {
  return withFile(path, "r", 0, (fd) => parseLine(lastLine(fd).line)?.through ?? 0);
}

/** Appends lines to a transcript synchronously and fsyncs it (start-up recovery from the commit log). */
export function appendLinesSync(path: string, lines: string[]): void {
  const fd = openSync(path, "a", 0o600);
  try {
    const bytes = Buffer.from(lines.join("\n") + "\n");
    for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A transcript line checked: a JSON object with an integer seq, or a valid run. */
function parseLine(line: string): { seq: number; through: number; run?: DeltaRun } | undefined {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || !Number.isSafeInteger(parsed.seq)) return undefined;
  if (parsed.run === undefined) return { seq: parsed.seq as number, through: parsed.seq as number };
  const run = asRun(parsed);
  return run && { seq: run.seq, through: run.through, run };
}

/**
 * Where to start reading for `fromSeq`: the last index entry at or below it that
 * lies inside the file, or the start. The caller checks the line found there.
 */
export async function indexedStart(path: string, fromSeq: number, size: number): Promise<{ seq: number; offset: number }> {
  const index = Bun.file(indexPath(path));
  let best = { seq: 0, offset: 0 };
  if (fromSeq <= 1 || !(await index.exists())) return best;
  for (const entry of (await index.text()).split("\n")) {
    const [seq, offset] = entry.split(" ").map(Number);
    if (Number.isSafeInteger(seq) && Number.isSafeInteger(offset) && seq! <= fromSeq && seq! > best.seq && offset! < size) best = { seq: seq!, offset: offset! };
  }
  return best;
}

/** The valid lines of a file from `offset` on, in order, read in chunks. */
async function* linesFrom(file: ReturnType<typeof Bun.file>, offset: number): AsyncGenerator<{ seq: number; through: number; line: string; run?: DeltaRun } | undefined> {
  const splitter = new LineSplitter();
  for await (const chunk of file.slice(offset).stream()) {
    for (const line of splitter.push(chunk)) {
      const parsed = parseLine(line);
      yield parsed && { ...parsed, line };
    }
  }
}

/**
 * Streams the events of a transcript whose seq lies in [fromSeq, toSeq], in
 * order, each as the exact frame clients saw (runs expanded), in chunks so a long
 * file never blocks the event loop for long. The sparse index lets a tail read
 * skip what comes before (O(what is replayed)); an index entry that does not
 * match its line is ignored. Every line is validated: corrupt lines, a torn last
 * line and anything not past the previous seq are skipped.
 */
export async function* readTranscript(path: string, fromSeq: number, toSeq = Number.POSITIVE_INFINITY): AsyncGenerator<{ seq: number; line: string }> {
  const file = Bun.file(path);
  if (!(await file.exists())) return;
  let start = await indexedStart(path, fromSeq, file.size);
  let last = 0;
  for (let lines = linesFrom(file, start.offset); ; ) {
    const { value: parsed, done } = await lines.next();
    if (done) return;
    if (start.offset > 0) {
      const matches = parsed?.seq === start.seq;
      start = { seq: 0, offset: 0 };
      if (!matches) {
        await lines.return(undefined);
        lines = linesFrom(file, 0);
        continue;
      }
    }
    if (!parsed || parsed.through < fromSeq || parsed.seq <= last) continue;
    last = parsed.through;
    const events = parsed.run ? expandRun(parsed.run) : [{ seq: parsed.seq, line: parsed.line }];
    for (const event of events) {
      if (event.seq > toSeq) return;
      if (event.seq >= fromSeq) yield event;
    }
  }
}
