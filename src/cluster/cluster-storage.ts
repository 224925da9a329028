/**
 * The hub's storage on a gateway in a cluster: everything the single node does
 * (seq reservations, the local commit log, transcripts behind), and then each
 * commit batch appended to the chats' Redis streams by the lease holder,
 * fenced, before the hub reveals it. The append is the only step other nodes
 * see (their fan-out reads the PUBLISH inside it), so an event is in Redis
 * before any subscriber on any node sees it.
 *
 * A chat's lease is taken at its first commit on this node and renewed every
 * third of its TTL while held. A chat another node holds is refused (the hub
 * drops the batch's events for it, unseen); a lease lost (renewal refused, a
 * fenced append) is forgotten, so the next commit has to win it again. A
 * chat with nothing written for a while is released (ClusterNode decides when):
 * another node may take it at once, and this node's next commit claims it anew.
 *
 * Redis may stop answering without closing the connection (paused): an append
 * or renewal not answered within `commandTimeoutMs` is not waited for. The
 * append counts as failed (the hub retries it; its events stay unseen and count
 * against its held cap); the command itself is still queued on the connection,
 * so a chat sends nothing more until it is answered (no pile-up in Redis), and
 * the retry is idempotent (event-log.ts) in case it ran. A renewal that timed
 * out leaves the lease unconfirmed: the chat appends nothing until a renewal
 * answers (held: writes resume; lost: forgotten, as any lost lease).
 *
 * With a durable history, every batch Redis took is handed to the archiver
 * (archiver.ts, written behind), and a chat claimed here has whatever its
 * previous writer left unarchived archived from its stream.
 */
import type { ChatStorage } from "../chat/storage.ts";
import type { AppendOutcome, HubStorage } from "../chat/hub.ts";
import type { Archiver } from "./archiver.ts";
import type { ClusterEventLog, LoggedEvent } from "./event-log.ts";
import type { ChatLeases, Fence } from "./lease.ts";
import { FencedError, SeqBehindError } from "./lua.ts";
import { answeredWithin } from "./command-timeout.ts";

export interface ClusterStorageHooks {
  warn(msg: string, fields: Record<string, unknown>): void;
  /** Takes a free lease the node's way (catch-up first, then `claim`); false when another node holds it. */
  takeOver(chatId: string): Promise<boolean>;
}

export class ClusterStorage implements HubStorage {
  /** Events staged since the last append, per chat, in seq order. */
  #pending = new Map<string, LoggedEvent[]>();
  /** Bytes of the events staged or being appended, not yet in Redis (what waits in memory while Redis fails). */
  #heldBytes = 0;
  readonly #fences = new Map<string, Fence>();
  /** When each held chat last had a batch appended (or its lease won). */
  readonly #lastWrite = new Map<string, number>();
  /** Chats whose batch is being appended now: never released under it. */
  readonly #appending = new Map<string, number>();
  /** Releases under way: a claim of the same chat waits for it (or the release would drop the new lease). */
  readonly #releasing = new Map<string, Promise<unknown>>();
  readonly #renewTimer: Timer;
  /** Appends sent and not answered yet, per chat (one at most: the next waits for it). */
  readonly #unanswered = new Map<string, Promise<unknown>>();
  /** Leases won whose catch-up (`claim`'s prepare) is under way: renewed too, as a long catch-up may outlast the TTL. */
  readonly #preparing = new Set<Fence>();
  /** Renewals sent and not answered yet. */
  readonly #renewing = new Set<Fence>();
  /** Chats whose last renewal timed out: no append until one is answered. */
  readonly #unconfirmed = new Set<string>();

  constructor(
    private readonly local: ChatStorage,
    private readonly leases: ChatLeases,
    private readonly log: ClusterEventLog,
    private readonly hooks: ClusterStorageHooks,
    /** cluster_redis_command_timeout_ms */
    private readonly commandTimeoutMs: number,
    /** With a durable history (store_postgres_url): what this node appends is archived behind. */
    private readonly archiver?: Archiver,
  ) {
    this.#renewTimer = setInterval(() => void this.#renewAll(), Math.max(1, Math.floor(leases.ttlMs / 3)));
    this.#renewTimer.unref();
  }

  /** Whether this node holds the chat's lease (as far as it knows: a renewal may be about to fail). */
  owns(chatId: string): boolean {
    return this.#fences.has(chatId);
  }

  loadSeq(chatId: string): number {
    return this.local.loadSeq(chatId);
  }

  storedSeq(chatId: string): number {
    return this.local.storedSeq(chatId);
  }

  reserveSeq(chatId: string, through: number): void {
    this.local.reserveSeq(chatId, through);
  }

  stage(chatId: string, line: string, seq: number, frame: string): void {
    this.local.stage(chatId, line);
    let events = this.#pending.get(chatId);
    if (!events) this.#pending.set(chatId, (events = []));
    events.push({ seq, stored: line, frame });
    this.#heldBytes += line.length;
  }

  /** Everything not yet in Redis, not only the local batch (empty once written locally): the hub's cap while appends fail. */
  stagedBytes(): number {
    return this.#heldBytes;
  }

  /**
   * The chat's events staged and not yet appended are dropped: its batch was
   * refused and the hub numbers again from its last revealed seq (a disown).
   * Kept, they would go ahead of the renumbered ones.
   */
  dropPending(chatId: string): void {
    for (const e of this.#pending.get(chatId) ?? []) this.#heldBytes -= e.stored.length;
    this.#pending.delete(chatId);
  }

  /** The local write (sync, throws as on a single node), then the fenced appends; resolves with each chat's outcome (never rejects). */
  commit(): Promise<AppendOutcome> {
    this.local.commit();
    const batch = this.#pending;
    this.#pending = new Map();
    return this.#appendAll(batch);
  }

  committed(chatId: string, seq: number, line: string, event: object, type: string): void {
    this.local.committed(chatId, seq, line, event, type);
  }

  /** Shutdown, after the hub's last commit: the archive written (briefly waited for), leases given up (another node may take the chats at once), local files closed. */
  async close(): Promise<void> {
    clearInterval(this.#renewTimer);
    await this.archiver?.close();
    await Promise.allSettled([...this.#fences.values()].map((fence) => this.leases.release(fence)));
    this.#fences.clear();
    await this.local.close();
  }

  /**
   * Every chat's append at once (pipelined), each with its own outcome: a chat
   * refused for good loses its events whatever happens to the others; one that
   * failed for a passing reason (a Redis error) is kept for the retry, ahead of
   * newer events.
   */
  async #appendAll(batch: Map<string, LoggedEvent[]>): Promise<AppendOutcome> {
    const refused = new Set<string>();
    const failed = new Set<string>();
    let error: unknown;
    const chats = [...batch];
    const outcomes = await Promise.allSettled(chats.map(([chatId, events]) => this.#append(chatId, events, refused)));
    outcomes.forEach((outcome, i) => {
      const [chatId, events] = chats[i]!;
      if (outcome.status === "fulfilled") {
        for (const e of events) this.#heldBytes -= e.stored.length;
        if (refused.has(chatId)) this.dropPending(chatId);
        else this.archiver?.appended(chatId, events);
        return;
      }
      error = outcome.reason;
      failed.add(chatId);
      this.#pending.set(chatId, [...events, ...(this.#pending.get(chatId) ?? [])]);
    });
    return { refused, failed, error };
  }

  async #append(chatId: string, events: LoggedEvent[], refused: Set<string>): Promise<void> {
    this.#appending.set(chatId, (this.#appending.get(chatId) ?? 0) + 1);
    try {
      await this.#appendHeld(chatId, events, refused);
    } finally {
      const left = this.#appending.get(chatId)! - 1;
      if (left === 0) this.#appending.delete(chatId);
      else this.#appending.set(chatId, left);
      if (this.#fences.has(chatId)) this.#lastWrite.set(chatId, Date.now());
    }
  }

  async #appendHeld(chatId: string, events: LoggedEvent[], refused: Set<string>): Promise<void> {
    const fence = this.#fences.get(chatId) ?? ((await this.hooks.takeOver(chatId)) ? this.#fences.get(chatId) : undefined);
    if (!fence) {
      refused.add(chatId);
      return;
    }
    try {
      await this.#appendAnswered(fence, events);
    } catch (e) {
      if (e instanceof SeqBehindError) {
        // This node had not mirrored everything another writer appended: its events would reuse seqs. The
        // lease is given up, so the next message takes the chat over the node's way (catch-up first).
        this.hooks.warn("events refused: the chat's stream is ahead of this node; its lease is given up", { chat_id: chatId, stream_last_seq: e.lastSeq });
        this.#fences.delete(chatId);
        await this.leases.release(fence).catch(() => false);
        refused.add(chatId);
        return;
      }
      if (!(e instanceof FencedError)) throw e;
      this.#fences.delete(chatId);
      this.#lastWrite.delete(chatId);
      refused.add(chatId);
    }
  }

  /** The fenced append, waited for at most `commandTimeoutMs`; fails at once while the chat's previous one is unanswered or its lease unconfirmed. */
  async #appendAnswered(fence: Fence, events: LoggedEvent[]): Promise<void> {
    const { chatId } = fence;
    if (this.#unconfirmed.has(chatId)) throw new Error(`chat ${chatId}: the lease's renewal is not answered yet; appends wait for it`);
    if (this.#unanswered.has(chatId)) throw new Error(`chat ${chatId}: the previous append is not answered yet`);
    const sent = this.log.append(fence, events);
    this.#unanswered.set(chatId, sent);
    const answered = () => {
      if (this.#unanswered.get(chatId) === sent) this.#unanswered.delete(chatId);
    };
    sent.then(answered, answered);
    await answeredWithin(sent, this.commandTimeoutMs, "an append");
  }

  /**
   * Takes the chat's lease for this node, if free (or already this node's), and
   * writes with it only once `prepare` (the catch-up) has run; a failed
   * `prepare` gives the lease up again and rejects. A release of the chat under
   * way is waited for first (it would otherwise drop the new lease).
   */
  async claim(chatId: string, prepare: () => Promise<void>): Promise<boolean> {
    await this.#releasing.get(chatId);
    const fence = await this.leases.acquire(chatId);
    if (!fence) return false;
    this.#preparing.add(fence);
    try {
      await prepare();
    } catch (e) {
      await this.leases.release(fence).catch(() => false);
      throw e;
    } finally {
      this.#preparing.delete(fence);
    }
    this.#fences.set(chatId, fence);
    this.archiver?.claimed(chatId);
    this.#unconfirmed.delete(chatId);
    this.#lastWrite.set(chatId, Date.now());
    return true;
  }

  /** Held chats with nothing appended since `before` and nothing waiting to be. */
  idleSince(before: number): string[] {
    return [...this.#fences.keys()].filter((chatId) => (this.#lastWrite.get(chatId) ?? 0) < before && !this.#pending.has(chatId) && !this.#appending.has(chatId));
  }

  /** Gives the chat's lease up (an idle chat): its next commit here claims it again, if still free. */
  async release(chatId: string): Promise<void> {
    const fence = this.#fences.get(chatId);
    if (!fence) return;
    this.#fences.delete(chatId);
    this.#lastWrite.delete(chatId);
    const releasing = this.leases.release(fence).finally(() => {
      if (this.#releasing.get(chatId) === releasing) this.#releasing.delete(chatId);
    });
    this.#releasing.set(chatId, releasing);
    await releasing;
  }

  /**
   * All at once (pipelined). A Redis error keeps the fence: if the lease lapses meanwhile, the next append is fenced and drops it.
   * A lease still preparing is only kept alive here (its outcome is the first append's to find out).
   */
  async #renewAll(): Promise<void> {
    await Promise.all([...this.#fences.values(), ...this.#preparing].filter((fence) => !this.#renewing.has(fence)).map((fence) => this.#renew(fence)));
  }

  async #renew(fence: Fence): Promise<void> {
    const { chatId } = fence;
    this.#renewing.add(fence);
    try {
      const renewal = this.leases.renew(fence).catch(() => true);
      const held = await answeredWithin(renewal, this.commandTimeoutMs, "a lease renewal").catch(() => {
        // Possibly lost: nothing is appended until Redis answers this renewal (fencing decides either way),
        // unless a newer lease replaced this one meanwhile (its own renewals speak for it).
        if (this.#fences.get(chatId) === fence) this.#unconfirmed.add(chatId);
        this.hooks.warn("Redis did not answer a lease renewal in time; the chat's events wait until it does", { chat_id: chatId });
        return renewal;
      });
      // Only if still the same lease: a new one may have been won meanwhile.
      if (this.#fences.get(chatId) !== fence) return;
      this.#unconfirmed.delete(chatId);
      if (held) return;
      this.#fences.delete(chatId);
      this.#lastWrite.delete(chatId);
      this.hooks.warn("lost a chat's lease; its next events must win it again", { chat_id: chatId });
    } finally {
      this.#renewing.delete(fence);
    }
  }
}
