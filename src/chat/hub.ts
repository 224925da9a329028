/**
 * The hub: one ordered event stream per chat, fanned out through native Bun
 * pub/sub topics on every listener, durable before visible.
 *
 * `publish` is the hot path and never waits for the disk per event: it reserves
 * and assigns the chat's next `seq`, serializes the event once and stages it in
 * the commit log's batch. Once per event-loop turn (group commit), or as soon as
 * the batch reaches `commitBatchBytes` (a busy turn would otherwise hold all its
 * events in memory), the batch is written with one synchronous `write`; only
 * when that has returned are the batch's events published natively on every
 * listener (uWS walks its topic tree; no JS loop per subscriber), in seq order,
 * and handed to the per-chat transcripts behind. A kill -9 can therefore never
 * lose an event a client saw.
 *
 * Nothing holds a published frame afterwards: a resume reads committed events
 * from the transcript, from its file or, for the few not yet written, from its
 * queued batch (ChatReader). Keeping a ring of recent frames per chat cost more
 * than all the rest of the gateway's per-event work with 1 000 streaming chats
 * (each frame outlived the young generation: GC work and page faults, measured).
 *
 * Faults: a failed reservation refuses the event (seq 0, an error event to the
 * chat's clients) rather than use an unreserved seq; a failed commit keeps the
 * batch, tells the clients of the chats concerned, and retries; nothing of it is
 * visible until it is written. `latestSeq` and every client read only ever see
 * committed events.
 */
import type { Server } from "bun";
import type { ChatEvent } from "../protocol/events.ts";
import { metrics } from "../metrics/metrics.ts";
import { CHAT_OWNED_ELSEWHERE, EVENT_TOO_LARGE, STORAGE_ERROR, STORE_FAILED } from "../protocol/errors.ts";
import { utf8Bound, utf8Exceeds } from "../store/utf8-size.ts";

/** Every client connection subscribes to this topic: events for all, e.g. runtime_model_updated. */
export const EVERYONE_TOPIC = "everyone";

/**
 * Seqs are reserved in the store this many at a time, ahead of use: one small
 * write per block instead of per event, and after a crash numbering resumes
 * past anything a client may have seen (a gap, never a reuse).
 */
const SEQ_BLOCK = 1024;
/** Eviction passes run at most this often while over chat_streams_max. */
const EVICTION_DELAY_MS = 100;

/** Where the hub keeps what must outlive the process. */
export interface HubStorage {
  /** The highest seq ever reserved for the chat (deleted chats included); 0 for a chat never seen. */
  loadSeq(chatId: string): number;
  /** The last seq stored for a chat that is not in memory (its transcript's last). */
  storedSeq(chatId: string): number;
  /** Throws when the reservation could not be written. */
  reserveSeq(chatId: string, through: number): void;
  /** Adds one stored line to the commit batch (memory only); `frame` is what clients see of it. */
  stage(chatId: string, line: string, seq: number, frame: string): void;
  /**
   * Writes the batch (one syscall); throws, keeping the batch, on failure. A
   * clustered storage also appends it to Redis and returns that promise: the hub
   * reveals the batch when it resolves (one batch in flight), chat by chat by
   * its outcome.
   */
  commit(): void | Promise<AppendOutcome>;
  /** Bytes staged and not yet committed. */
  stagedBytes(): number;
  /** A committed event, for the chat's transcript (behind); `type` is its `event` field, read once at publish. */
  committed(chatId: string, seq: number, line: string, event: object, type: string): void;
}

export interface HubLimits {
  /** Largest stored event; a bigger one is refused before it gets a seq. */
  maxEventBytes: number;
  /** While commits fail, events wait in memory up to this many bytes; beyond, new events are refused. */
  maxStagedBytes: number;
  /** A batch this big is committed at once rather than at the end of the loop turn. */
  commitBatchBytes: number;
  /** A failed commit is retried after this long. */
  retryMs: number;
  /** In-memory chat streams kept; beyond, idle ones (no subscriber, no turn, all written) are forgotten, oldest first. */
  maxChats: number;
}

/** Clustered: what became of a batch's append, per chat; chats in neither set were appended. */
export interface AppendOutcome {
  /** Refused for good (another gateway holds the lease): their events are dropped, unseen. */
  refused: ReadonlySet<string>;
  /** Failed for a passing reason (a Redis error): kept by the storage for the retry. */
  failed: ReadonlySet<string>;
  /** The last failure, for the log. */
  error: unknown;
}

/** What `mirror` did with another writer's event: shown, skipped (its seq already held here), or kept back for later. */
export type Mirrored = "revealed" | "held" | "withheld";

/** Clustered: after-commit work of one chat, and what runs instead when that chat's batch is refused for good. */
export interface RefusedWork {
  chatId: string;
  run(): void;
}

/** An event published but not yet committed. */
interface Staged {
  seq: number;
  /** The event's type, read once at publish (the reveal loop then reads no field of events of many shapes). */
  type: string;
  frame: string;
  stored: string;
  event: object;
}

export interface ChatStream {
  readonly chatId: string;
  readonly topic: string;
  /** Last seq assigned (staged or committed). */
  lastSeq: number;
  reservedThrough: number;
  /** Last seq committed: the newest any client may see. */
  durableSeq: number;
  /** Last seq in the chat's transcript file; the ones after it, through durableSeq, are in its queued batch. */
  flushedThrough: number;
  staged: Staged[];
  /** Events are being refused (told to clients once). */
  refusing: boolean;
}

export interface HubHooks {
  /** Whether the chat has a turn running (its stream state is then kept). */
  busy(chatId: string): boolean;
  /** Clustered: another gateway holds the chat's lease and this node's unrevealed events for it were dropped (its local turn must stop; the chat's clients here follow the new writer from `latestSeq`). */
  disowned?(chatId: string): void;
  log(level: "warn" | "error", msg: string, fields: Record<string, unknown>): void;
}

// The hub publishes through listeners whatever their per-connection data type.
type AnyServer = Server<any>;

export class Hub {
  /** An array, not a Set: the per-event fan-out walks it by index (no iterator per event on the hot path). */
  #listeners: AnyServer[] = [];
  /** Chat streams, least recently loaded or kept first. */
  readonly #chats = new Map<string, ChatStream>();
  /** Chats with staged events, in the order they first staged one. */
  readonly #dirty = new Set<ChatStream>();
  /** Broadcasts waiting for the commit of the chat events published before them. */
  #broadcasts: string[] = [];
  #commitScheduled = false;
  /** Work waiting for the next commit (afterCommit). */
  readonly #afterCommit: (() => void)[] = [];
  /** Clustered only: what runs instead of waiting work when its chat's batch is refused for good (afterCommit's `ifRefused`). */
  readonly #ifRefused = new Map<() => void, RefusedWork>();
  #retryTimer: Timer | undefined;
  #evictionTimer: Timer | undefined;
  #failing = false;
  /** Shut down (settle): a commit failing now (a clustered append returning late) is not retried. */
  #settled = false;
  /** Clustered storage only: the batch whose append is in flight (staged events per chat), and the work waiting for it. */
  #inFlight: { counts: Map<ChatStream, number>; broadcasts: string[]; afterCommit: (() => void)[] } | undefined;

  constructor(
    private readonly storage: HubStorage,
    private readonly limits: HubLimits,
    private readonly hooks: HubHooks,
  ) {}

  addListener(server: AnyServer): void {
    if (!this.#listeners.includes(server)) this.#listeners = [...this.#listeners, server];
  }

  removeListener(server: AnyServer): void {
    this.#listeners = this.#listeners.filter((s) => s !== server);
  }

  static topicOf(chatId: string): string {
    return `chat:${chatId}`;
  }

  /** Chat streams held in memory (a gauge on /metrics). */
  get streamCount(): number {
    return this.#chats.size;
  }

  /** The chat's newest committed seq (what `attached` reports); creates no state. */
  latestSeq(chatId: string): number {
    return this.#chats.get(chatId)?.durableSeq ?? this.storage.storedSeq(chatId);
  }

  /** The chat's in-memory stream, if it has one (readers never create one). */
  view(chatId: string): ChatStream | undefined {
    return this.#chats.get(chatId);
  }

  /**
   * Publishes a chat event; fills in and returns its `seq`, or 0 when the event
   * was refused (storage failing, or too big) and nobody will ever see it. An
   * event's `private` part (original text, server paths) goes to storage only.
   */
  publish(event: ChatEvent & { private?: object }): number {
    // Per event: the rare cases (a chat not in memory, a new seq block, a large event or a failing disk) are
    // checked inline and handled out of line, so the hot path is one function JSC optimizes once, not a chain.
    const chat = this.#chats.get(event.chat_id) ?? this.#open(event.chat_id);
    const seq = chat.lastSeq + 1;
    if (seq > chat.reservedThrough && !this.#reserve(chat, seq)) return 0;
    event.seq = seq;
    const stored = JSON.stringify(event);
    if ((this.#failing || utf8Bound(stored) > this.limits.maxEventBytes) && !this.#admissible(chat, stored)) return 0;
    chat.lastSeq = seq;
    chat.refusing = false;
    const frame = event.private === undefined ? stored : JSON.stringify({ ...event, private: undefined });
    this.storage.stage(chat.chatId, stored, seq, frame);
    chat.staged.push({ seq, type: event.event, frame, stored, event });
    this.#dirty.add(chat);
    if (this.#failing) return seq;
    // A busy loop turn does not hold its whole output in memory: a full batch is written (and shown) now.
    if (this.storage.stagedBytes() >= this.limits.commitBatchBytes) this.commit();
    else if (!this.#commitScheduled) {
      this.#commitScheduled = true;
      setImmediate(() => this.commit());
    }
    return seq;
  }

  /**
   * Group commit: writes every staged event with one write, then makes them
   * visible, chat by chat in seq order. Runs once per event-loop turn, and from
   * `publish` when the batch is full; shutdown calls it directly.
   */
  commit(): boolean {
    this.#commitScheduled = false;
    if (this.#dirty.size === 0 || this.#inFlight) return true;
    let appending: ReturnType<HubStorage["commit"]>;
    try {
      appending = this.storage.commit();
    } catch (e) {
      this.#commitFailed(e);
      return false;
    }
    if (appending) {
      this.#awaitAppend(appending);
      return true;
    }
    if (this.#failing) this.hooks.log("warn", "storage accepts writes again; held events published", {});
    this.#failing = false;
    for (const chat of this.#dirty) this.#reveal(chat, chat.staged.length);
    this.#dirty.clear();
    this.#revealed(this.#broadcasts.splice(0), this.#afterCommit.splice(0));
    return true;
  }

  /** After a batch is visible: the broadcasts and work that waited for it, then memory upkeep. */
  #revealed(broadcasts: string[], afterCommit: (() => void)[]): void {
    for (const text of broadcasts) for (const server of this.#listeners) server.publish(EVERYONE_TOPIC, text);
    for (const fn of afterCommit) this.#runAfterCommit(fn);
    this.#scheduleEviction();
  }

  /**
   * Clustered: the batch is revealed once its append resolves; events published
   * meanwhile wait for the next commit, which starts when this one ends. Chats
   * refused for good lose the batch's events (nobody saw them) and their stream;
   * chats whose append failed are retried, and the work waiting for the whole
   * batch (acks, broadcasts) waits for that retry.
   */
  #awaitAppend(appending: Promise<AppendOutcome>): void {
    const inFlight = { counts: new Map<ChatStream, number>(), broadcasts: this.#broadcasts.splice(0), afterCommit: this.#afterCommit.splice(0) };
    for (const chat of this.#dirty) inFlight.counts.set(chat, chat.staged.length);
    this.#dirty.clear();
    this.#inFlight = inFlight;
    appending.then(
      ({ refused, failed, error }) => {
        this.#inFlight = undefined;
        for (const [chat, count] of inFlight.counts) {
          if (this.#chats.get(chat.chatId) !== chat) continue; // deleted meanwhile
          if (refused.has(chat.chatId)) this.#disown(chat);
          else if (failed.has(chat.chatId)) this.#dirty.add(chat);
          else this.#reveal(chat, count);
        }
        const waiting = this.#ifRefused.size === 0 ? inFlight.afterCommit : this.#runRefusedWork(inFlight.afterCommit, refused, failed.size > 0);
        if (failed.size > 0) return this.#retryLater(inFlight.broadcasts, waiting, error);
        if (this.#failing) this.hooks.log("warn", "storage accepts writes again; held events published", {});
        this.#failing = false;
        this.#revealed(inFlight.broadcasts, waiting);
        if (this.#dirty.size > 0) this.commit();
      },
      (e: unknown) => {
        this.#inFlight = undefined;
        for (const chat of inFlight.counts.keys()) this.#dirty.add(chat);
        this.#retryLater(inFlight.broadcasts, inFlight.afterCommit, e);
      },
    );
  }

  /** The batch's broadcasts and after-commit work wait for the retry, ahead of newer ones. */
  #retryLater(broadcasts: string[], afterCommit: (() => void)[], error: unknown): void {
    this.#broadcasts.unshift(...broadcasts);
    this.#afterCommit.unshift(...afterCommit);
    this.#commitFailed(error);
  }

  /**
   * Runs the `ifRefused` alternative of the work whose chat was refused; returns
   * the rest. Alternatives of work still waiting (`retrying`) stay registered.
   */
  #runRefusedWork(work: (() => void)[], refused: ReadonlySet<string>, retrying: boolean): (() => void)[] {
    const rest: (() => void)[] = [];
    for (const fn of work) {
      const alternative = this.#ifRefused.get(fn);
      if (alternative && (refused.has(alternative.chatId) || !retrying)) this.#ifRefused.delete(fn);
      if (alternative && refused.has(alternative.chatId)) this.#runAfterCommit(alternative.run);
      else rest.push(fn);
    }
    return rest;
  }

  /**
   * Another gateway writes this chat: its unseen events are dropped (numbering
   * goes back to the last revealed seq) and its local turn stops. The stream
   * stays: its clients go on from the last seq they were sent, with the new
   * writer's events mirrored (the hook has the fan-out deliver from there).
   */
  #disown(chat: ChatStream): void {
    this.#tell(chat, CHAT_OWNED_ELSEWHERE);
    chat.staged = [];
    chat.lastSeq = chat.durableSeq;
    this.#dirty.delete(chat);
    this.hooks.disowned?.(chat.chatId);
  }

  /** The transcript file now holds the chat's events through `seq`. */
  flushed(chatId: string, seq: number): void {
    const chat = this.#chats.get(chatId);
    if (!chat) return;
    chat.flushedThrough = Math.max(chat.flushedThrough, seq);
    this.#scheduleEviction();
  }

  /**
   * Sends a frame to every open client connection on every listener (not part
   * of any chat). It keeps its place after chat events published before it: it
   * waits for their commit (unless commits are failing).
   */
  broadcast(frame: object): void {
    const text = JSON.stringify(frame);
    if (this.#dirty.size > 0 && !this.#failing) this.#broadcasts.push(text);
    else if (this.#inFlight) this.#inFlight.broadcasts.push(text);
    else for (const server of this.#listeners) server.publish(EVERYONE_TOPIC, text);
  }

  /**
   * Runs `fn` once everything published so far is written and visible: at once
   * when nothing waits, else after the next successful commit. Replies that
   * promise something about published events (message_ack) go out this way, so
   * no client is told of an event a kill -9 could still lose.
   *
   * `fn` may run inside a later `publish` (the one that fills the batch to
   * `commitBatchBytes` commits at once), so it reads state as it is then: a
   * hydrate may report a run as active that ends in the same synchronous
   * stretch; the run's next events (turn_end, goal_status idle) follow it.
   *
   * Clustered storage only: `ifRefused` runs instead of `fn` when the batch
   * holding the chat's events is refused for good (another gateway writes the
   * chat; nothing of it was stored), so no ack promises a dropped event.
   */
  afterCommit(fn: () => void, ifRefused?: RefusedWork): void {
    if (this.#dirty.size > 0) this.#afterCommit.push(fn);
    else if (this.#inFlight) this.#inFlight.afterCommit.push(fn);
    else return this.#runAfterCommit(fn);
    if (ifRefused) this.#ifRefused.set(fn, ifRefused);
  }

  /** Commits now and resolves once everything published so far is visible: at once when the commit fails, after `timeoutMs` at most (shutdown). */
  whenVisible(timeoutMs: number): Promise<void> {
    if (!this.commit()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.afterCommit(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #runAfterCommit(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.hooks.log("error", "after-commit work failed", { error: String(e) });
    }
  }

  /**
   * Clustered: an event another gateway appended reaches this node's clients of
   * the chat through the same topic and transcript as its own events (the
   * fan-out calls this in seq order, once per seq). "withheld" when this node
   * has unrevealed events of its own numbered before it (their append decides
   * what comes first), so it is to be delivered again, from `latestSeq`, once
   * they are settled; showing it now would leave a gap. "held" when the seq
   * is already held here (nothing shown: not this event, perhaps).
   */
  mirror(chatId: string, seq: number, frame: string, event: object): Mirrored {
    const chat = this.#open(chatId);
    // Already held: revealed here, or this node's own batch coming back while its append is in flight (another
    // writer's event at such a seq means this node's is refused: its disown has the fan-out deliver again).
    if (seq <= chat.durableSeq || (chat.staged.length > 0 && seq <= chat.lastSeq)) return "held";
    if (chat.staged.length > 0) return "withheld";
    for (const server of this.#listeners) server.publish(chat.topic, frame);
    chat.lastSeq = chat.durableSeq = seq;
    chat.reservedThrough = Math.max(chat.reservedThrough, seq);
    this.storage.committed(chatId, seq, frame, event, (event as { event?: string }).event ?? "");
    this.#scheduleEviction();
    return "revealed";
  }

  /**
   * Clustered, after a takeover's catch-up: the chat's Redis stream holds seqs
   * through `seq` (some perhaps no longer readable there), so this node numbers
   * its next event past them (a gap, never a reuse).
   */
  continueAfter(chatId: string, seq: number): void {
    const chat = this.#open(chatId);
    if (seq > chat.lastSeq) chat.lastSeq = seq;
  }

  /** The chat was deleted: forget its stream. */
  forget(chatId: string): void {
    const chat = this.#chats.get(chatId);
    if (!chat) return;
    this.#chats.delete(chatId);
    this.#dirty.delete(chat);
  }

  /** Clean shutdown: record each chat's exact last seq, so numbering continues without a gap. */
  settle(): void {
    this.#settled = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#evictionTimer);
    for (const chat of this.#chats.values()) this.#settleSeq(chat);
  }

  #open(chatId: string): ChatStream {
    let chat = this.#chats.get(chatId);
    if (!chat) {
      const stored = this.storage.storedSeq(chatId);
      const seq = Math.max(this.storage.loadSeq(chatId), stored);
      chat = { chatId, topic: Hub.topicOf(chatId), lastSeq: seq, reservedThrough: seq, durableSeq: stored, flushedThrough: stored, staged: [], refusing: false };
      this.#chats.set(chatId, chat);
    }
    return chat;
  }

  /** Reserves the next block from `seq` (past the chat's reserved block) in the store before it is used; refuses the event when it cannot be. */
  #reserve(chat: ChatStream, seq: number): boolean {
    try {
      this.storage.reserveSeq(chat.chatId, seq + SEQ_BLOCK - 1);
    } catch (e) {
      metrics.storageFault("seq_reserve");
      this.#refuse(chat, "could not reserve a seq", e);
      return false;
    }
    chat.reservedThrough = seq + SEQ_BLOCK - 1;
    return true;
  }

  /** An event too big to store, or arriving while too much waits for a failing disk, is refused whole. */
  #admissible(chat: ChatStream, stored: string): boolean {
    if (utf8Exceeds(stored, this.limits.maxEventBytes)) {
      metrics.storageFault("event_too_large");
      this.#refuse(chat, "event over the size guard", undefined, EVENT_TOO_LARGE);
      return false;
    }
    if (this.#failing && this.storage.stagedBytes() > this.limits.maxStagedBytes) {
      this.#refuse(chat, "too much is waiting for the disk", undefined);
      return false;
    }
    return true;
  }

  /** Logs and tells the chat's clients, once per run of refusals (the next accepted event ends the run). */
  #refuse(chat: ChatStream, why: string, error: unknown, reason = STORE_FAILED): void {
    if (chat.refusing) return;
    chat.refusing = true;
    this.hooks.log("error", `event refused: ${why}`, { chat_id: chat.chatId, ...(error !== undefined && { error: String(error) }) });
    this.#tell(chat, reason);
  }

  /** An error event to the chat's clients: not part of the stream (no seq), so not stored. */
  #tell(chat: ChatStream, reason: string): void {
    const text = JSON.stringify({ event: "error", detail: STORAGE_ERROR, reason, chat_id: chat.chatId });
    for (const server of this.#listeners) server.publish(chat.topic, text);
  }

  #commitFailed(error: unknown): void {
    metrics.storageFault("commit");
    if (!this.#failing) {
      this.hooks.log("error", "commit failed; events held until storage accepts them", { error: String(error), chats: this.#dirty.size });
      for (const chat of this.#dirty) this.#tell(chat, STORE_FAILED);
    }
    this.#failing = true;
    for (const text of this.#broadcasts.splice(0)) for (const server of this.#listeners) server.publish(EVERYONE_TOPIC, text);
    clearTimeout(this.#retryTimer);
    if (!this.#settled) this.#retryTimer = setTimeout(() => this.commit(), this.limits.retryMs);
  }

  /**
   * Reveals the chat's first `count` staged events (all of them unless a clustered
   * commit was in flight). The per-event hot loop of the commit: kept short and
   * indexed so JSC optimizes it once.
   */
  #reveal(chat: ChatStream, count: number): void {
    const listeners = this.#listeners;
    const { topic, staged, chatId } = chat;
    let subscribers = 0;
    for (let l = 0; l < listeners.length; l++) subscribers += listeners[l]!.subscriberCount(topic);
    metrics.delivered(subscribers * count);
    // Events are counted per run of one type (a stream's deltas): one metric call per run, not per event.
    let runType = staged[0]!.type;
    let runLength = 0;
    for (let i = 0; i < count; i++) {
      const { seq, type, frame, stored, event } = staged[i]!;
      if (type !== runType) {
        metrics.eventPublished(runType, runLength);
        runType = type;
        runLength = 0;
      }
      runLength++;
      for (let l = 0; l < listeners.length; l++) listeners[l]!.publish(topic, frame);
      this.storage.committed(chatId, seq, stored, event, type);
    }
    metrics.eventPublished(runType, runLength);
    chat.durableSeq = staged[count - 1]!.seq;
    chat.staged = count === staged.length ? [] : staged.slice(count);
  }

  /** Over the cap, one eviction pass soon (chats turn idle as their transcripts catch up), at most one pending. */
  #scheduleEviction(): void {
    if (this.#chats.size <= this.limits.maxChats || this.#evictionTimer !== undefined) return;
    this.#evictionTimer = setTimeout(() => {
      this.#evictionTimer = undefined;
      this.#evictIdle();
    }, EVICTION_DELAY_MS);
  }

  /**
   * Forgets idle chat streams, oldest first, down to 90 % of the cap: no staged
   * event, everything in the transcript, no subscriber on any listener, no turn.
   * Busy ones move to the back. The exact last seq is recorded first, so a
   * reload continues the numbering without a gap.
   */
  #evictIdle(): void {
    const target = Math.floor(this.limits.maxChats * 0.9);
    let visits = this.#chats.size;
    for (const chat of this.#chats.values()) {
      if (this.#chats.size <= target || visits-- === 0) return;
      this.#chats.delete(chat.chatId);
      if (!this.#idle(chat) || !this.#settleSeq(chat)) this.#chats.set(chat.chatId, chat);
    }
  }

  #idle(chat: ChatStream): boolean {
    if (chat.staged.length > 0 || chat.flushedThrough < chat.durableSeq || this.hooks.busy(chat.chatId)) return false;
    for (const server of this.#listeners) if (server.subscriberCount(chat.topic) > 0) return false;
    return true;
  }

  /** Records the chat's exact last seq when more was reserved; false when that write failed. */
  #settleSeq(chat: ChatStream): boolean {
    if (chat.reservedThrough <= chat.lastSeq) return true;
    try {
      this.storage.reserveSeq(chat.chatId, chat.lastSeq);
      chat.reservedThrough = chat.lastSeq;
      return true;
    } catch (e) {
      this.hooks.log("warn", "could not record a chat's last seq", { chat_id: chat.chatId, error: String(e) });
      return false;
    }
  }
}
