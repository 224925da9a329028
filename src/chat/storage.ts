/**
 * What the hub stores through: seq reservations in SQLite, the commit log
 * (written once per event-loop turn, before anything is visible) and the
 * per-chat transcripts derived from it behind.
 *
 * fsync policy (machine crashes; a process crash loses nothing either way):
 * `batch` fsyncs the commit log after every commit, `turn` when a committed
 * batch holds a turn_end, `never` leaves it to the OS. A log segment is deleted
 * only once every transcript holds its events (fsynced unless `never`), and
 * closed segments are deleted together once they add up to `retireBytes`: each
 * deletion fsyncs every transcript written since the last one, one fsync per
 * chat (~150 µs of kernel time each on ext4), which with 1 000 streaming chats
 * cost ~0.5 µs per event when done at every 64 MiB segment (measured).
 *
 * At start, `recoverTranscripts` replays the segments a killed process left into
 * the transcripts (events past each one's last seq), then deletes them.
 */
import { metrics } from "../metrics/metrics.ts";
import type { ChatStore } from "../store/chat-store.ts";
import { CommitLog, leftoverRecords, removeSegments } from "../store/commit-log.ts";
import { lastSeqIn, repairedLastSeq, storedEvent, type TranscriptOptions, TranscriptWriter, transcriptPath } from "../store/transcript.ts";
import type { HubStorage } from "./hub.ts";

export type FsyncPolicy = "batch" | "turn" | "never";

export interface ChatStorageOptions {
  store: ChatStore;
  log: CommitLog;
  transcript: TranscriptWriter;
  transcriptFile: (chatId: string) => string;
  fsync: FsyncPolicy;
  /** Closed log segments are deleted together once they add up to this many bytes (and at shutdown). */
  retireBytes: number;
}

export class ChatStorage implements HubStorage {
  /** Segments below this may be deleted once the transcripts hold everything written so far. */
  #retireBelow = 0;
  /** The log's closedBytes when a retire was last started. */
  #retiredBytes = 0;
  #retiring = false;
  /** The last retire's transcript flush failed: the next rotation tries again, whatever its size. */
  #retireFailed = false;
  /**
   * Transcript tails read in the current synchronous stretch: attaching to a chat
   * not in memory asks for its last stored seq several times (the attached reply,
   * the reader, the hub), and the file is read once.
   */
  readonly #storedSeqs = new Map<string, number>();

  constructor(private readonly options: ChatStorageOptions) {}

  loadSeq(chatId: string): number {
    return this.options.store.seqFloor(chatId);
  }

  storedSeq(chatId: string): number {
    let seq = this.#storedSeqs.get(chatId);
    if (seq === undefined) {
      seq = lastSeqIn(this.options.transcriptFile(chatId));
      if (this.#storedSeqs.size === 0) queueMicrotask(() => this.#storedSeqs.clear());
      this.#storedSeqs.set(chatId, seq);
    }
    return seq;
  }

  reserveSeq(chatId: string, through: number): void {
    this.options.store.reserveSeq(chatId, through);
  }

  stage(chatId: string, line: string): void {
    this.options.log.append(chatId, line);
  }

  stagedBytes(): number {
    return this.options.log.pendingBytes;
  }

  commit(): void {
    const { log } = this.options;
    const started = performance.now();
    const bytes = log.pendingBytes;
    const segment = log.commit();
    if (this.options.fsync === "batch") log.sync();
    metrics.commitWritten((performance.now() - started) / 1000, bytes);
    if (log.segment === segment || (log.closedBytes - this.#retiredBytes < this.options.retireBytes && !this.#retireFailed)) return;
    this.#retiredBytes = log.closedBytes;
    // After the hub has handed this batch to the transcripts (later in this same task).
    queueMicrotask(() => this.#retire(segment + 1));
  }

  committed(chatId: string, seq: number, line: string, event: object, type: string): void {
    this.options.transcript.append(chatId, seq, line, event);
    // `type`, not a field of the event object: this runs per event, and reading a field of events of every
    // shape made JSC's optimized code exit at each stream's end.
    if (this.options.fsync === "turn" && type === "turn_end") this.options.log.sync();
  }

  /** Shutdown (after the hub's last commit): everything into the transcripts, then no segment is needed. */
  async close(): Promise<void> {
    const ok = await this.options.transcript.close(this.options.fsync !== "never");
    this.options.log.close();
    if (ok) await this.options.log.retireBelow(Number.POSITIVE_INFINITY);
  }

  #retire(below: number): void {
    this.#retireBelow = Math.max(this.#retireBelow, below);
    if (this.#retiring) return;
    this.#retiring = true;
    const target = this.#retireBelow;
    void this.options.transcript.flush(this.options.fsync !== "never").then((ok) => {
      this.#retiring = false;
      // A failed transcript write keeps the segments: they are tried again at the next rotation.
      this.#retireFailed = !ok;
      if (!ok) return;
      void this.options.log.retireBelow(target);
      // A step that came while this one ran retires its segments now, not a whole step later.
      if (this.#retireBelow > target) this.#retire(this.#retireBelow);
    });
  }
}

const RECOVERY_FAILED = "could not write the events recovered from the commit log into their transcripts";
/** Recovered events are written to their transcripts every this many, so a long log is not held in memory whole. */
const RECOVERY_BATCH_EVENTS = 65_536;

/**
 * Start-up: every event the commit log holds past its transcript's last seq is
 * appended to that transcript (events of a deleted chat at or below its seq floor
 * are not resurrected), through a transcript writer of its own: deltas are
 * stored as runs, as when written live, and the files are fsynced together on
 * the thread pool. Then the segments are removed. Returns events recovered;
 * throws, keeping the segments, when the transcripts could not be written.
 */
export async function recoverTranscripts(logDir: string, writer: TranscriptOptions, seqFloorOfDeleted: (chatId: string) => number): Promise<number> {
  const transcript = new TranscriptWriter(writer);
  const last = new Map<string, number>();
  let recovered = 0;
  try {
    for (const { chatId, line } of leftoverRecords(logDir)) {
      const stored = storedEvent(line);
      if (stored === undefined) continue;
      if (!last.has(chatId)) last.set(chatId, Math.max(repairedLastSeq(transcriptPath(writer.dir, chatId)), seqFloorOfDeleted(chatId)));
      if (stored.seq <= last.get(chatId)!) continue;
      last.set(chatId, stored.seq);
      transcript.append(chatId, stored.seq, line, stored.event);
      if (++recovered % RECOVERY_BATCH_EVENTS === 0 && !(await transcript.flush())) throw new Error(RECOVERY_FAILED);
    }
    if (!(await transcript.close(true))) throw new Error(RECOVERY_FAILED);
  } catch (e) {
    await transcript.close(false);
    throw e;
  }
  removeSegments(logDir);
  return recovered;
}
