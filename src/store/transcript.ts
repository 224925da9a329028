/**
 * Per-chat JSONL transcripts: `<data_dir>/transcripts/<chat_id>.jsonl`, one
 * compact JSON event per line, each with its `seq`; consecutive deltas of one
 * stream share a line as a run (see delta-runs.ts).
 *
 * They are derived behind the commit log (which already made each event
 * durable before any client saw it): `append` queues an event's line in the
 * chat's batch (or its text in the open run); a timer writes every chat's batch with one synchronous `write` per chat, from
 * one reused buffer, on a cached file descriptor. Synchronous on purpose: a
 * write to the page cache costs a few µs, while the thread pool's round trip
 * (promise chain, hand-off, futex wake-up) cost several times that per chat per
 * flush, and a buffer per chat in flight was most of the gateway's page faults
 * with 1 000 streaming chats. Only fsync, which waits for the device, runs on
 * the thread pool, and only for files written since the last one.
 *
 * Faults: a write that fails (disk full, I/O error) is cut back to the file's
 * size before it and the batch stays queued for a retry; `onFlushed` only ever
 * reports what is in the file, and `unwritten` serves the rest from the batch
 * (a resume reads a chat's recent events from here: nothing else keeps them). A torn last
 * line (a previous process died inside a write) is cut the first time this
 * process opens the file; a file whose cut-back failed is closed and checked
 * again when reopened. A line over the size guard is refused whole and logged
 * (the hub refuses such events before they get a seq, so this is a last guard).
 */
import { appendFileSync, closeSync, existsSync, fstatSync, fsync, ftruncateSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { LineSplitter } from "../line-splitter.ts";
import { metrics } from "../metrics/metrics.ts";
import type { Logger } from "../log.ts";
import { writeUtf8 } from "./buffer-write.ts";
import { MAX_JSON_BYTES_PER_UNIT, utf8Bound, utf8Exceeds } from "./utf8-size.ts";
import { asRun, continues, type DeltaFields, type DeltaRun, encodeRunInto, expandRun, runBytesBound, runMember, startRun } from "./delta-runs.ts";

export interface TranscriptOptions {
  dir: string;
  flushMs: number;
  maxLineBytes: number;
  maxOpenFiles: number;
  /** After a failed write, the batch is tried again this much later. */
  retryMs: number;
  /** A sparse index entry (first seq of a batch → its byte offset) is kept about every this many bytes, from INDEX_FIRST_STRIDES of them on. */
  indexEveryBytes?: number;
  log: Logger;
  /** Told after each write which seq of a chat is now in the file. */
  onFlushed?: (chatId: string, seq: number) => void;
}

/**
 * A chat's lines waiting to be written, then the open run; the last seq is
 * `lastSeq`. Kept across flushes while the chat keeps streaming (reset after each
 * write, dropped after a flush interval with nothing new), and every field is set
 * here: `append` is the per-event hot path, and a shape that changes, or an
 * object created anew every flush, made JSC throw away and recompile its
 * optimized code (measured with BUN_JSC_verboseOSR).
 */
class Pending {
  /** Stored lines, and closed runs (encoded straight into the write buffer when written). */
  lines: (string | DeltaRun)[] = [];
  /** 0: nothing queued since the last write. */
  firstSeq = 0;
  lastSeq = 0;
  run: DeltaRun | undefined = undefined;
  runChars = 0;
}

/** One chat's open file: its descriptor (append mode), size, and fsyncs in flight on it. */
interface ChatFile {
  fd: number;
  size: number;
  /** Offset of the last index entry this process wrote for the file (0: none yet). */
  indexed: number;
  /**
   * The index's descriptor once the file has one (-1 before): kept open with the
   * transcript, since opening a file costs far more than appending a line to it
   * (openat ~100 µs on this machine's ext4, strace -c), once per index stride per chat.
   */
  indexFd: number;
  syncing: number;
  /** Evicted while an fsync was in flight: the fsync's end closes it. */
  closeWhenSynced: boolean;
}

const NEWLINE = 0x0a;
const TAIL_SCAN_BYTES = 64 * 1024;
/** What a run line adds per member besides its text: the quotes and comma around it, and its share of the seq range. */
const RUN_MEMBER_OVERHEAD = 8;
/** The write buffer shared by every chat's flush; one grown past the kept size for a big batch is given back after it. */
const BUFFER_BYTES = 64 * 1024;
const KEPT_BUFFER_BYTES = 1024 * 1024;
const INDEX_EVERY_BYTES = 64 * 1024;
/**
 * The index starts once a file holds this many strides (256 KiB by default):
 * reading a smaller file whole costs about what reading its index would, and
 * most chats never grow that big, so they never create the second file (with
 * 1 000 new chats, creating the .idx files was ~5 % of the gateway's CPU on ext4).
 */
const INDEX_FIRST_STRIDES = 4;
/**
 * Chats whose tail this process checked: their file needs no check when reopened
 * (only this process wrote it since, whole lines or cut back), and its index goes
 * on from the offset last indexed. A memory bound, not a correctness one: past it
 * the map starts again and a reopen checks again (and indexes from its first write).
 */
const CHECKED_TAILS_MAX = 100_000;
/** fsyncs in flight at once (the thread pool runs a few at a time anyway). */
const SYNCS_AT_ONCE = 16;
/** Inside the transcripts directory (a rename must not cross file systems); no chat id starts with a dot. */
const TRASH_DIR = ".removed";

export function transcriptPath(dir: string, chatId: string): string {
  return join(dir, `${chatId}.jsonl`);
}

/** The sparse seq → offset index beside a transcript: lines of `<seq> <offset>`, a hint checked on use. */
export function indexPath(transcript: string): string {
  return `${transcript}.idx`;
}

export class TranscriptWriter {
  readonly #pending = new Map<string, Pending>();
  /** Open chat files, least recently written first (Map keeps insertion order). */
  readonly #files = new Map<string, ChatFile>();
  /** Descriptors those files hold, index ones included: held to maxOpenFiles. */
  #descriptors = 0;
  /** Chats written since the last fsync (their data may be in the page cache only). */
  readonly #unsynced = new Set<string>();
  /** The newest sync not yet ended (it includes the ones before it). */
  #syncInFlight: Promise<boolean> | undefined;
  /** Chats whose tail this process checked → the offset of their last index entry (0: none yet). */
  readonly #checkedTails = new Map<string, number>();
  #timer: Timer | undefined;
  #buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  #tailChecks = 0;
  /** Where removed chats' files wait for their deletion, and how many went there. */
  readonly #trash: string;
  #trashed = 0;

  constructor(private readonly options: TranscriptOptions) {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    this.#trash = join(options.dir, TRASH_DIR);
    // What a process killed in the middle of a removal left (none otherwise: this is one stat).
    rmSync(this.#trash, { recursive: true, force: true });
    mkdirSync(this.#trash, { mode: 0o700 });
  }

  /** Files whose tail this writer checked (at most once per file while it remembers them): for diagnostics and tests. */
  get tailChecks(): number {
    return this.#tailChecks;
  }

  /**
   * Hot path: adds one serialized event to the chat's batch; `event` (the same
   * event as an object) lets a delta join the open run. Never touches the disk.
   */
  append(chatId: string, seq: number, line: string, event?: object): void {
    const pending = this.#pending.get(chatId) ?? this.#newPending(chatId);
    const run = pending.run;
    const member = event === undefined ? undefined : runMember(event, line);
    // The common case, a delta continuing the open run, stays this short so it optimizes once.
    if (run !== undefined && member !== undefined && continues(run, member) && this.#fits(pending.runChars + member.text.length)) {
      run.texts.push(member.text);
      run.through = seq;
      pending.runChars += member.text.length + RUN_MEMBER_OVERHEAD;
      pending.lastSeq = seq;
      return;
    }
    this.#appendLine(chatId, pending, seq, line, member);
  }

  /**
   * The chat's queued events (not yet in its file) with seq in [from, through],
   * oldest first, as stored lines: runs expanded to the frames clients saw. Reads
   * are rare (a resume), so lines are parsed here rather than seqs kept per event.
   */
  unwritten(chatId: string, from: number, through: number): string[] {
    const pending = this.#pending.get(chatId);
    const out: string[] = [];
    if (pending === undefined) return out;
    const take = (seq: number, line: string) => {
      if (seq >= from && seq <= through) out.push(line);
    };
    for (const line of pending.lines) {
      if (typeof line !== "string") {
        for (const e of expandRun(line)) take(e.seq, e.line);
        continue;
      }
      const parsed = parseLine(line);
      if (parsed?.run) for (const e of expandRun(parsed.run)) take(e.seq, e.line);
      else if (parsed) take(parsed.seq, line);
    }
    if (pending.run) for (const e of expandRun(pending.run)) take(e.seq, e.line);
    return out;
  }

  /** Whether a run of `chars` characters plus a newcomer stays under the line guard (text counted at a JSON escape's worst). */
  #fits(chars: number): boolean {
    return (chars + RUN_MEMBER_OVERHEAD) * MAX_JSON_BYTES_PER_UNIT < this.options.maxLineBytes;
  }

  /** Any other event: the open run is closed; a delta starts a new one, anything else is queued as its own line. */
  #appendLine(chatId: string, pending: Pending, seq: number, line: string, member: DeltaFields | undefined): void {
    this.#closeRun(chatId, pending);
    if (member) {
      pending.run = startRun(member, line);
      pending.runChars = line.length;
    } else this.#queue(chatId, pending, seq, line);
    pending.lastSeq = seq;
    if (pending.firstSeq === 0) pending.firstSeq = seq;
    this.#timer ??= setTimeout(() => void this.flush(), this.options.flushMs);
  }

  /**
   * Writes every queued batch now; resolves true when all are in their files
   * (and, when `sync`, every file written since the last fsync is fsynced).
   */
  flush(sync = false): Promise<boolean> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    let ok = true;
    for (const [chatId, pending] of this.#pending) {
      // Nothing new for a whole flush interval: the chat stopped streaming, its batch is let go.
      if (pending.firstSeq === 0 && pending.run === undefined) this.#pending.delete(chatId);
      else ok = this.#write(chatId, pending) && ok;
    }
    if (this.#buffer.length > KEPT_BUFFER_BYTES) this.#buffer = Buffer.allocUnsafe(BUFFER_BYTES);
    if (!ok) this.#timer = setTimeout(() => void this.flush(), this.options.retryMs);
    if (!sync) return Promise.resolve(ok);
    return this.#syncWritten().then((synced) => ok && synced);
  }

  /**
   * Drops a chat's transcript entirely (the chat was deleted). Its files are moved
   * out of the way at once, then deleted on the thread pool (freeing a big file's
   * blocks takes a while: 264 ms for 500 MB on this machine's ext4): an event of
   * the same chat id published meanwhile starts a new file instead of going into
   * one about to be deleted.
   */
  async remove(chatId: string): Promise<void> {
    this.#pending.delete(chatId);
    this.#unsynced.delete(chatId);
    this.#close(chatId);
    this.#checkedTails.delete(chatId);
    const transcript = transcriptPath(this.options.dir, chatId);
    const moved = [transcript, indexPath(transcript)].map((path) => this.#moveToTrash(path));
    // Off their paths now: deleting them is housekeeping (a failure is logged; the next start empties the trash).
    const deleted = moved.map((path) => path && rm(path, { force: true }).catch((e: unknown) => this.options.log.warn("could not delete a removed transcript", { chat_id: chatId, error: String(e) })));
    await Promise.all(deleted);
  }

  /** Renames the file into the trash directory; undefined when there is no such file. */
  #moveToTrash(path: string): string | undefined {
    const trashed = join(this.#trash, `${++this.#trashed}`);
    try {
      renameSync(path, trashed);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      if (!existsSync(path)) return undefined;
      // The file is there, so the trash directory is not (removed while running): made again.
      mkdirSync(this.#trash, { recursive: true, mode: 0o700 });
      renameSync(path, trashed);
    }
    return trashed;
  }

  /** Shutdown: write everything (fsynced when `sync`), close files. True when all landed; what did not is not retried. */
  async close(sync: boolean): Promise<boolean> {
    const ok = await this.flush(sync);
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const chatId of [...this.#files.keys()]) this.#close(chatId);
    return ok;
  }

  /** Writes one chat's batch whole, or cuts the file back to its size before and keeps the batch. */
  #write(chatId: string, pending: Pending): boolean {
    this.#closeRun(chatId, pending);
    const bytes = pending.lines.length === 0 ? 0 : this.#encode(pending.lines);
    if (bytes > 0) {
      const started = performance.now();
      let file: ChatFile | undefined;
      let written = 0;
      try {
        file = this.#fileOf(chatId);
        while (written < bytes) written += writeSync(file.fd, this.#buffer, written, bytes - written);
      } catch (e) {
        metrics.storageFault("transcript");
        this.options.log.error("transcript write failed; will retry", { chat_id: chatId, error: String(e) });
        if (file && written > 0) this.#cutBack(chatId, file);
        return false;
      }
      metrics.transcriptWritten((performance.now() - started) / 1000, bytes);
      this.#indexed(chatId, file, pending.firstSeq, bytes);
      this.#unsynced.add(chatId);
    }
    pending.lines.length = 0;
    pending.firstSeq = 0;
    this.options.onFlushed?.(chatId, pending.lastSeq);
    return true;
  }

  /** Encodes the lines and runs, newline-ended, into the write buffer (grown when they may not fit); returns the bytes. */
  #encode(lines: (string | DeltaRun)[]): number {
    let bound = 0;
    for (const line of lines) bound += (typeof line === "string" ? utf8Bound(line) : runBytesBound(line)) + 1;
    if (bound > this.#buffer.length) this.#buffer = Buffer.allocUnsafe(Math.max(bound, this.#buffer.length * 2));
    const buffer = this.#buffer;
    let length = 0;
    for (const line of lines) {
      length = typeof line === "string" ? length + writeUtf8(buffer, line, length) : encodeRunInto(line, buffer, length);
      buffer[length++] = NEWLINE;
    }
    return length;
  }

  /** A failed write leaves no partial line: cut back, or, when even that fails, closed so a reopen checks the tail again. */
  #cutBack(chatId: string, file: ChatFile): void {
    try {
      ftruncateSync(file.fd, file.size);
    } catch {
      this.#checkedTails.delete(chatId);
      this.#close(chatId);
    }
  }

  /** After a write at the file's old end: an index entry when the last one is far enough behind. Only a hint: a failure loses nothing. */
  #indexed(chatId: string, file: ChatFile, firstSeq: number, bytes: number): void {
    const offset = file.size;
    file.size += bytes;
    const every = this.options.indexEveryBytes ?? INDEX_EVERY_BYTES;
    if (offset < file.indexed + every || offset < every * INDEX_FIRST_STRIDES) return;
    file.indexed = offset;
    if (this.#checkedTails.has(chatId)) this.#checkedTails.set(chatId, offset);
    const entry = `${firstSeq} ${offset}\n`;
    const path = indexPath(transcriptPath(this.options.dir, chatId));
    try {
      // An index takes a spare descriptor only: closing a transcript for it would cost a reopen per batch.
      if (file.indexFd < 0 && this.#descriptors < this.options.maxOpenFiles) {
        file.indexFd = openSync(path, "a", 0o600);
        this.#descriptors++;
      }
      if (file.indexFd >= 0) writeWhole(file.indexFd, Buffer.from(entry));
      // No descriptor to spare: opened for the one line.
      else appendFileSync(path, entry, { mode: 0o600 });
    } catch {}
  }

  /**
   * fsyncs (on the thread pool) every file written since the last time; false when one failed (it stays to be
   * synced). It also waits for the syncs still in flight, with their outcome: a file taken off the unsynced set
   * by an earlier sync is not on disk until that one ends, and true must mean everything written before is.
   */
  #syncWritten(): Promise<boolean> {
    const chats = [...this.#unsynced];
    this.#unsynced.clear();
    const earlier = this.#syncInFlight ?? Promise.resolve(true);
    const synced = Promise.all([earlier, this.#syncAll(chats)]).then((oks) => oks.every(Boolean));
    this.#syncInFlight = synced;
    void synced.then(() => {
      if (this.#syncInFlight === synced) this.#syncInFlight = undefined;
    });
    return synced;
  }

  /**
   * fsyncs the chats' files, SYNCS_AT_ONCE at a time: a file the open-file cap
   * closed is reopened for its fsync, and starting them all at once held a
   * descriptor per chat written (thousands at a retire step with thousands of
   * streaming chats, past the process's limit). True when all succeeded.
   */
  async #syncAll(chats: string[]): Promise<boolean> {
    let next = 0;
    let ok = true;
    const worker = async () => {
      while (next < chats.length) ok = (await this.#sync(chats[next++]!)) && ok;
    };
    await Promise.all(Array.from({ length: Math.min(SYNCS_AT_ONCE, chats.length) }, worker));
    return ok;
  }

  #sync(chatId: string): Promise<boolean> {
    const file = this.#files.get(chatId);
    const synced = file ? this.#syncOpen(file) : this.#syncClosed(transcriptPath(this.options.dir, chatId));
    return synced.then(
      () => true,
      (e: unknown) => {
        this.#unsynced.add(chatId);
        this.options.log.error("transcript fsync failed", { chat_id: chatId, error: String(e) });
        return false;
      },
    );
  }

  /** fsync on an open file; an eviction meanwhile waits for it to close the descriptor. */
  #syncOpen(file: ChatFile): Promise<void> {
    file.syncing++;
    return new Promise<void>((resolve, reject) =>
      fsync(file.fd, (e) => {
        if (--file.syncing === 0 && file.closeWhenSynced) closeSync(file.fd);
        if (e) reject(e);
        else resolve();
      }),
    );
  }

  /** A file closed since it was written (more chats than open files): reopened to be fsynced; one removed meanwhile needs none. */
  async #syncClosed(path: string): Promise<void> {
    const handle = await open(path, "r").catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return undefined;
      throw e;
    });
    if (!handle) return;
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** A new batch for the chat (append looks an existing one up itself: no call per event). */
  #newPending(chatId: string): Pending {
    const pending = new Pending();
    this.#pending.set(chatId, pending);
    return pending;
  }

  #closeRun(chatId: string, pending: Pending): void {
    const run = pending.run;
    if (!run) return;
    pending.run = undefined;
    // A run of several fits the line guard by construction (#fits); a run of one is its first line, checked as any.
    if (run.texts.length > 1) pending.lines.push(run);
    else this.#queue(chatId, pending, run.through, run.firstLine!);
  }

  /** Queues one line for the chat's next write, unless it is over the size guard. */
  #queue(chatId: string, pending: Pending, seq: number, line: string): void {
    if (utf8Exceeds(line, this.options.maxLineBytes, 1)) {
      this.options.log.error("transcript line refused: over the size guard", { chat_id: chatId, seq, bytes: Buffer.byteLength(line) });
      return;
    }
    pending.lines.push(line);
  }

  /** The chat's open file, now the most recently used; opened (the least recent beyond the cap closed) when it is not. */
  #fileOf(chatId: string): ChatFile {
    let file = this.#files.get(chatId);
    if (file) this.#files.delete(chatId);
    else {
      this.#makeRoom();
      file = this.#open(chatId);
      this.#descriptors++;
    }
    this.#files.set(chatId, file);
    return file;
  }

  /** Opens (creating) the chat's file for appending; the first open in this process cuts a torn tail. */
  #open(chatId: string): ChatFile {
    const fd = openSync(transcriptPath(this.options.dir, chatId), "a+", 0o600);
    try {
      const indexed = this.#checkedTails.get(chatId);
      if (indexed !== undefined) return { fd, size: fstatSync(fd).size, indexed, indexFd: -1, syncing: 0, closeWhenSynced: false };
      this.#tailChecks++;
      const tail = cutTornTail(fd);
      if (tail.cut > 0) this.options.log.warn("transcript: cut a torn last line", { chat_id: chatId, bytes: tail.cut });
      if (this.#checkedTails.size >= CHECKED_TAILS_MAX) this.#checkedTails.clear();
      this.#checkedTails.set(chatId, 0);
      return { fd, size: tail.size, indexed: 0, indexFd: -1, syncing: 0, closeWhenSynced: false };
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /**
   * Frees a descriptor for a chat about to be opened: a kept index's first (its
   * next entries are opened per entry), then the least recently written chat's
   * files (the map iterates oldest first), which are reopened at its next batch.
   */
  #makeRoom(): void {
    for (const file of this.#files.values()) {
      if (this.#descriptors < this.options.maxOpenFiles) return;
      this.#closeIndex(file);
    }
    for (const oldest of this.#files.keys()) {
      if (this.#descriptors < this.options.maxOpenFiles) return;
      this.#close(oldest);
    }
  }

  /** Closes the chat's file (its index's at once, its own after the fsync in flight on it). */
  #close(chatId: string): void {
    const file = this.#files.get(chatId);
    if (!file) return;
    this.#files.delete(chatId);
    this.#descriptors--;
    this.#closeIndex(file);
    if (file.syncing > 0) file.closeWhenSynced = true;
    else closeSync(file.fd);
  }

  /** The index is only a hint: a failure to close its descriptor is not the transcript's. */
  #closeIndex(file: ChatFile): void {
    if (file.indexFd < 0) return;
    try {
      closeSync(file.indexFd);
    } catch {}
    file.indexFd = -1;
    this.#descriptors--;
  }
}

/**
 * The end of the last complete line of an open file (0 when it has none), and
 * that line. Reads at most what it must from the end.
 */
function lastLine(fd: number, size = fstatSync(fd).size): { keep: number; line: string } {
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

/** Cuts a torn last line (a write a previous process never finished) off a file open for writing; returns the bytes cut and kept, and the last whole line. */
function cutTornTail(fd: number): { cut: number; size: number; last: string } {
  const size = fstatSync(fd).size;
  const { keep, line } = lastLine(fd, size);
  if (keep < size) ftruncateSync(fd, keep);
  return { cut: size - keep, size: keep, last: line };
}

/** Start-up recovery: cuts a torn tail off the transcript and returns its last seq (0 when none), reading the tail once. */
export function repairedLastSeq(path: string): number {
  return withFile(path, "r+", 0, (fd) => parseLine(cutTornTail(fd).last)?.through ?? 0);
}

/** The last seq of a transcript (a run's last), ignoring a torn tail; 0 when there is none. */
export function lastSeqIn(path: string): number {
  return withFile(path, "r", 0, (fd) => parseLine(lastLine(fd).line)?.through ?? 0);
}

/** Writes all of `bytes` at the descriptor's position (a write may take less than asked). */
function writeWhole(fd: number, bytes: Buffer): void {
  for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
}

/** A commit-log line (one event) checked as a transcript line is, with the event it holds; undefined when it is not valid. */
export function storedEvent(line: string): { seq: number; event: object } | undefined {
  const parsed = parseJson(line);
  if (parsed === undefined || parsed.run !== undefined || !Number.isSafeInteger(parsed.seq)) return undefined;
  return { seq: parsed.seq as number, event: parsed };
}

/** The line parsed, when it is a JSON object. */
function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A transcript line checked: a JSON object with an integer seq, or a valid run. */
function parseLine(line: string): { seq: number; through: number; run?: DeltaRun } | undefined {
  const parsed = parseJson(line);
  if (parsed === undefined || !Number.isSafeInteger(parsed.seq)) return undefined;
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
