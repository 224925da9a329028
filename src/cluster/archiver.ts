/**
 * A writer's side of the cluster's durable history (store_postgres_url): the
 * events this node appended to its chats' Redis streams are written to
 * PostgreSQL (event-archive.ts) behind, every `intervalMs`, all chats in a few
 * statements (no transaction: each run is whole or absent, and a failed round
 * is written again), in runs of at most `batchEvents`; then the chat's archived mark
 * in Redis is raised, and only then may its stream drop them (event-log.ts).
 * Streaming never waits for any of it: `appended` only queues.
 *
 * The Redis stream is the source of truth, the memory queue a shortcut: what
 * is not in memory (a takeover: the dead writer's unarchived events; a queue
 * dropped past `maxQueuedEvents`; a failed write) is read back from the stream,
 * from the archived mark on, which the stream keeps until archived. So a writer
 * killed at any point leaves no gap: the next writer archives what is left.
 */
import type { ArchivedRun, EventArchive } from "../store/event-archive.ts";
import { answeredWithin } from "./command-timeout.ts";
import type { ClusterEventLog, LoggedEvent } from "./event-log.ts";

export interface ArchiverOptions {
  /** cluster_archive_interval_ms */
  intervalMs: number;
  /** cluster_archive_batch_events */
  batchEvents: number;
  /** cluster_archive_max_queued_events */
  maxQueuedEvents: number;
  /** cluster_redis_command_timeout_ms: a stalled Redis fails a round's stream reads (retried next round) instead of holding every later round. */
  commandTimeoutMs: number;
}

interface Unarchived {
  /** Events appended here, seqs ascending (dropped past maxQueuedEvents: read back from the stream). */
  queued: LoggedEvent[];
  /** Archive through this seq; undefined: through whatever the stream holds (a takeover). */
  through: number | undefined;
}

/** Rows' worth of events read back from a chat's stream per round: a writer catching up (after a takeover or an outage) gains on a chat streaming fast. */
const STREAM_READ_ROWS = 16;
/** How long shutdown waits for the last write: what is left is archived by the chats' next writers. */
const CLOSE_WAIT_MS = 2000;

export class Archiver {
  #chats = new Map<string, Unarchived>();
  #queuedEvents = 0;
  /** Each chat's archived mark as last known here (read from Redis once, then raised by this node's writes), while it has events to archive. */
  readonly #archived = new Map<string, number>();
  #writing: Promise<void> | undefined;
  readonly #timer: Timer;

  constructor(
    private readonly log: ClusterEventLog,
    private readonly archive: EventArchive,
    private readonly options: ArchiverOptions,
    private readonly warn: (msg: string, fields: Record<string, unknown>) => void,
  ) {
    this.#timer = setInterval(() => void this.flush(), options.intervalMs);
    this.#timer.unref();
  }

  /** A batch is in the chat's stream (appended by this node): to be archived. The per-commit cost is one push. */
  appended(chatId: string, events: LoggedEvent[]): void {
    const chat = this.#chat(chatId);
    if (this.#queuedEvents + events.length > this.options.maxQueuedEvents) this.#dropQueues();
    else {
      chat.queued.push(...events);
      this.#queuedEvents += events.length;
    }
    if (chat.through !== undefined) chat.through = Math.max(chat.through, events.at(-1)!.seq);
  }

  /** This node now writes the chat: whatever its stream holds that the archive lacks is archived (the last writer may have died before). */
  claimed(chatId: string): void {
    // Another node may have archived meanwhile: its mark is read again.
    this.#archived.delete(chatId);
    this.#chat(chatId).through = undefined;
  }

  /** One write of everything waiting (a second call while one runs waits for it). */
  flush(): Promise<void> {
    return (this.#writing ??= this.#write().finally(() => (this.#writing = undefined)));
  }

  /** Shutdown: the write under way, then one more of what was appended since (the hub's last commit), both within CLOSE_WAIT_MS. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    const last = async () => {
      await this.#writing?.catch(() => {});
      await this.flush();
    };
    await Promise.race([last(), Bun.sleep(CLOSE_WAIT_MS)]);
  }

  #chat(chatId: string): Unarchived {
    let chat = this.#chats.get(chatId);
    if (!chat) this.#chats.set(chatId, (chat = { queued: [], through: 0 }));
    return chat;
  }

  #dropQueues(): void {
    for (const chat of this.#chats.values()) chat.queued = [];
    this.#queuedEvents = 0;
    this.warn("too many events wait for the durable history; they are read again from the Redis streams", { max: this.options.maxQueuedEvents });
  }

  async #write(): Promise<void> {
    if (this.#chats.size === 0) return;
    const chats = this.#chats;
    this.#chats = new Map();
    this.#queuedEvents = 0;
    const entries = [...chats];
    const picked = await Promise.allSettled(entries.map(([chatId, chat]) => this.#pick(chatId, chat)));
    const runs: ArchivedRun[] = [];
    const marks = new Map<string, number>();
    picked.forEach((result, i) => {
      const [chatId, chat] = entries[i]!;
      if (result.status === "rejected") return this.#keep(chatId, chat);
      const { events, rest } = result.value;
      if (rest) this.#keep(chatId, rest);
      if (events.length === 0) return;
      runs.push(...toRuns(chatId, events, this.options.batchEvents));
      marks.set(chatId, events.at(-1)!.seq);
    });
    try {
      await this.archive.write(runs);
    } catch (e) {
      this.warn("could not write to the durable history; retried from the Redis streams", { error: String(e) });
      for (const [chatId, chat] of chats) this.#keep(chatId, { queued: [], through: chat.through });
      return;
    }
    await Promise.allSettled(
      [...marks].map(async ([chatId, through]) => {
        this.#archived.set(chatId, Math.max(this.#archived.get(chatId) ?? 0, through));
        // Failing, the stream keeps the events longer: the next mark raises it past them.
        await this.log.markArchived(chatId, through);
      }),
    );
    // A chat with nothing left (no append since, nothing kept) forgets its mark: read again if it is written again.
    for (const chatId of chats.keys()) if (!this.#chats.has(chatId)) this.#archived.delete(chatId);
  }

  /**
   * A chat's events to archive now: those after its archived mark, from
   * memory, and from the stream where memory lacks them (at most
   * STREAM_READ_ROWS rows' worth per round); and what is left for the next round.
   */
  async #pick(chatId: string, chat: Unarchived): Promise<{ events: LoggedEvent[]; rest?: Unarchived }> {
    let archived = this.#archived.get(chatId);
    if (archived === undefined) this.#archived.set(chatId, (archived = await answeredWithin(this.log.archivedThrough(chatId), this.options.commandTimeoutMs, "an archived mark")));
    const queued = chat.queued.filter((e) => e.seq > archived);
    if (queued.length > 0 && queued[0]!.seq === archived + 1) return { events: queued };
    const through = chat.through ?? Number.POSITIVE_INFINITY;
    if (archived >= through) return { events: [] };
    const count = this.options.batchEvents * STREAM_READ_ROWS;
    const read = (await answeredWithin(this.log.after(chatId, archived, count), this.options.commandTimeoutMs, "a stream read")).filter((e) => e.seq <= through);
    if (read.length > 0 && read[0]!.seq > archived + 1) this.warn("events the durable history lacks are no longer in the chat's Redis stream either", { chat_id: chatId, from: archived + 1, to: read[0]!.seq - 1 });
    const last = read.at(-1)?.seq ?? archived;
    const tail = queued.filter((e) => e.seq > last);
    const streamRead = read.length < count || last >= through;
    if (streamRead || (tail.length > 0 && tail[0]!.seq === last + 1)) return { events: [...read, ...tail] };
    return { events: read, rest: { queued: tail, through: chat.through } };
  }

  /** Puts a chat back for the next round, ahead of what was appended since. */
  #keep(chatId: string, chat: Unarchived): void {
    const now = this.#chats.get(chatId);
    if (!now) {
      this.#chats.set(chatId, chat);
      this.#queuedEvents += chat.queued.length;
      return;
    }
    // Newer appends stay; older queued events are read back from the stream if needed (the gap is detected).
    now.through = now.through === undefined || chat.through === undefined ? undefined : Math.max(now.through, chat.through);
  }
}

/** Consecutive seqs in runs of at most `max` events (a seq gap starts a new run). */
function toRuns(chatId: string, events: LoggedEvent[], max: number): ArchivedRun[] {
  const runs: ArchivedRun[] = [];
  let start = 0;
  for (let i = 1; i <= events.length; i++) {
    if (i < events.length && events[i]!.seq === events[i - 1]!.seq + 1 && i - start < max) continue;
    const run = events.slice(start, i);
    runs.push({ chatId, firstSeq: run[0]!.seq, lastSeq: run.at(-1)!.seq, frames: run.map((e) => e.frame).join("\n") });
    start = i;
  }
  return runs;
}
