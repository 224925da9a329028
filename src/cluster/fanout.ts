/**
 * Fan-out on a node that follows chats another node (or this one) writes: one
 * Redis subscriber connection per node, one channel per followed chat. Each
 * batch notice carries its first seq and the client frames; frames reach
 * `deliver` exactly once per seq, in seq order, with no gap: a notice that
 * skips ahead (a missed message, a reconnect) or the catch-up after following
 * is filled from the chat's stream first (what the capped stream no longer
 * holds, from the durable history or another node), and notices arriving
 * meanwhile wait.
 * The node hands delivered frames to its native Bun topic, so its own sockets
 * are served by uWS as on a single node.
 */
import { answeredWithin } from "./command-timeout.ts";
import { type ClusterEventLog, decodeNotice } from "./event-log.ts";
import type { OlderEvents } from "./history.ts";
import type { ClusterKeys } from "./keys.ts";
import type { Subscriptions } from "./subscriptions.ts";

/** Events read from the stream per XRANGE while filling a gap. */
const FILL_BATCH = 512;
/** XRANGE calls one gap fill may make: bounds a fill chasing a writer that keeps appending. */
const FILL_ROUNDS = 64;

type Deliver = (chatId: string, seq: number, frame: string) => void;

export interface FanoutHooks {
  deliver: Deliver;
  /** Seqs `from`..`to`, which the stream no longer holds, from the archive or another node (history.ts): consecutive ones (the rest is asked for next), or none. */
  older(chatId: string, from: number, to: number): Promise<OlderEvents>;
  /** History neither the stream nor another node had: `from`..`to` are not delivered. */
  trimmed(chatId: string, from: number, to: number): void;
  /** Reading the stream or delivering an event failed. */
  error(chatId: string, error: unknown): void;
}

interface Followed {
  /** The next seq to deliver. */
  next: number;
  /** Notices that arrived while the stream was being read. */
  waiting: string[] | undefined;
  /** The seq a resume asked delivery to go back to, until the next fill starts from it. */
  rewindTo: number | undefined;
  /** The stream read under way, if any. */
  filling: Promise<void> | undefined;
  /** When it was followed or last delivered something (Date.now()). */
  activeAt: number;
  /** Resolves once subscribed and caught up: every follow() of the chat waits for it. */
  ready: Promise<void>;
}

export class ClusterFanout {
  readonly #chats = new Map<string, Followed>();
  /** Runs in a Redis subscriber callback, outside any error boundary: a throw (the mirror's transcript write) is reported, and the next notice's gap fill redelivers. */
  readonly #listener = (message: string, channel: string) => {
    try {
      this.#onNotice(channel, message);
    } catch (e) {
      this.hooks.error(this.keys.chatOfChannel(channel) ?? channel, e);
    }
  };

  constructor(
    /** A connection of its own: a subscribed Redis connection can run no other commands. */
    private readonly subscriber: Subscriptions,
    private readonly log: ClusterEventLog,
    private readonly keys: ClusterKeys,
    private readonly hooks: FanoutHooks,
    /** cluster_redis_command_timeout_ms: a stalled Redis fails a subscription or stream read (the follow is answered as a Redis failure) instead of holding it forever. */
    private readonly commandTimeoutMs: number,
  ) {
    // Notices published while the connection was down are lost: the streams have them.
    subscriber.onReconnect(() => {
      for (const [chatId, chat] of this.#chats) this.catchUp(chatId, chat.next - 1, chat.next - 1).catch((e: unknown) => this.hooks.error(chatId, e));
    });
  }

  /**
   * Delivers every event of the chat after `afterSeq`, then each new batch as it
   * is appended; resolves once caught up (a second caller waits for the first's
   * catch-up). A failed start forgets the chat, so the next follow() tries again.
   */
  follow(chatId: string, afterSeq: number): Promise<void> {
    const followed = this.#chats.get(chatId);
    if (followed) return followed.ready;
    const chat: Followed = { next: afterSeq + 1, waiting: [], rewindTo: undefined, filling: undefined, activeAt: Date.now(), ready: Promise.resolve() };
    this.#chats.set(chatId, chat);
    chat.ready = this.#start(chatId, chat);
    return chat.ready;
  }

  async #start(chatId: string, chat: Followed): Promise<void> {
    try {
      // Subscribed before reading the stream: a batch appended in between is in one or the other (or both: seqs dedupe).
      await answeredWithin(this.subscriber.subscribe(this.keys.channel(chatId), this.#listener), this.commandTimeoutMs, "a subscription");
      await this.#startFill(chatId, chat);
    } catch (e) {
      await this.unfollow(chatId).catch(() => {});
      throw e;
    }
  }

  /**
   * Delivers everything the stream holds through `throughSeq` (a node taking
   * the chat over must have every published event before it numbers new ones);
   * rejects when the stream cannot be read. Fills until done or a fill delivers
   * nothing more (the rest is no longer in the stream).
   */
  async catchUp(chatId: string, afterSeq: number, throughSeq: number): Promise<void> {
    const following = this.#chats.has(chatId);
    await this.follow(chatId, afterSeq);
    const chat = this.#chats.get(chatId)!;
    if (following) await this.#fillAfterOthers(chatId, chat);
    for (let before = 0; chat.next <= throughSeq && chat.next !== before && this.#chats.get(chatId) === chat; ) {
      before = chat.next;
      await this.#fillAfterOthers(chatId, chat);
    }
  }

  /**
   * Delivers the chat again from after `afterSeq` (following it if not yet):
   * the hub skipped events of another writer while this node's own, since
   * refused, held their seqs, so delivery goes back to the last seq revealed.
   */
  async resume(chatId: string, afterSeq: number): Promise<void> {
    const chat = this.#chats.get(chatId);
    if (!chat) return this.follow(chatId, afterSeq);
    // Asked before waiting: resumes asked together are served by one fill, not each again.
    chat.rewindTo = Math.min(chat.rewindTo ?? Number.POSITIVE_INFINITY, afterSeq + 1);
    await chat.ready;
    await this.#fillAfterOthers(chatId, chat);
  }

  /**
   * Waits until no fill of the chat is under way (another resume or catch-up may
   * start one meanwhile), then goes back to a resume's seq if one asked and
   * fills: two fills at once would both deliver from the same `next`, twice
   * and out of order.
   */
  async #fillAfterOthers(chatId: string, chat: Followed): Promise<void> {
    while (chat.filling) await chat.filling.catch(() => {});
    if (this.#chats.get(chatId) !== chat) return;
    if (chat.rewindTo !== undefined) chat.next = Math.min(chat.next, chat.rewindTo);
    chat.rewindTo = undefined;
    chat.waiting ??= [];
    await this.#startFill(chatId, chat);
  }

  async unfollow(chatId: string): Promise<void> {
    if (!this.#chats.delete(chatId)) return;
    await answeredWithin(this.subscriber.unsubscribe(this.keys.channel(chatId)), this.commandTimeoutMs, "an unsubscription");
  }

  /** Followed chats with nothing delivered since `before` and no stream read under way. */
  idleSince(before: number): string[] {
    return [...this.#chats].filter(([, chat]) => chat.activeAt < before && chat.filling === undefined).map(([chatId]) => chatId);
  }

  /** Shutdown: every chat unfollowed (nothing more is delivered). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#chats.keys()].map((chatId) => this.unfollow(chatId)));
  }

  #onNotice(channel: string, message: string): void {
    const chatId = this.keys.chatOfChannel(channel);
    const chat = chatId === undefined ? undefined : this.#chats.get(chatId);
    if (!chat || chatId === undefined) return;
    if (chat.waiting) {
      chat.waiting.push(message);
      return;
    }
    const { first, frames } = decodeNotice(message);
    if (first > chat.next) {
      chat.waiting = [message];
      this.#startFill(chatId, chat).catch((e: unknown) => this.hooks.error(chatId, e));
      return;
    }
    this.#deliverFrom(chatId, chat, first, frames);
  }

  #deliverFrom(chatId: string, chat: Followed, first: number, frames: string[]): void {
    chat.activeAt = Date.now();
    for (let i = chat.next - first; i < frames.length; i++) {
      this.hooks.deliver(chatId, first + i, frames[i]!);
    }
    chat.next = Math.max(chat.next, first + frames.length);
  }

  #startFill(chatId: string, chat: Followed): Promise<void> {
    const filling: Promise<void> = this.#fill(chatId, chat).finally(() => {
      // A fill started after this one ended (a notice skipping ahead) is still under way.
      if (chat.filling === filling) chat.filling = undefined;
    });
    chat.filling = filling;
    return filling;
  }

  /** Seqs from `next` through `last`, trimmed from the stream: from the archive or another node, page after page, or logged as missing. */
  async #fillOlder(chatId: string, chat: Followed, last: number): Promise<void> {
    while (chat.next <= last) {
      const { first, frames } = await this.hooks.older(chatId, chat.next, last);
      if (this.#chats.get(chatId) !== chat) return;
      const from = frames.length > 0 ? first : last + 1;
      if (from > chat.next) this.hooks.trimmed(chatId, chat.next, from - 1);
      for (const [i, frame] of frames.entries()) {
        if (first + i >= chat.next) this.hooks.deliver(chatId, first + i, frame);
      }
      // Always moves on (past the page, or past `last` when none): the loop ends.
      chat.next = Math.max(chat.next, from + frames.length);
    }
  }

  /** Reads the stream from `next` on, then replays the notices that waited (their seqs already read are skipped); rejects when the stream could not be read. */
  async #fill(chatId: string, chat: Followed): Promise<void> {
    let failure: unknown;
    try {
      for (let round = 0; round < FILL_ROUNDS; round++) {
        const events = await answeredWithin(this.log.after(chatId, chat.next - 1, FILL_BATCH), this.commandTimeoutMs, "a stream read");
        if (this.#chats.get(chatId) !== chat) return;
        if (events.length > 0 && events[0]!.seq > chat.next) await this.#fillOlder(chatId, chat, events[0]!.seq - 1);
        if (this.#chats.get(chatId) !== chat) return;
        if (events.length > 0) chat.activeAt = Date.now();
        for (const e of events) {
          if (e.seq < chat.next) continue;
          this.hooks.deliver(chatId, e.seq, e.frame);
          chat.next = e.seq + 1;
        }
        if (events.length < FILL_BATCH) break;
      }
    } catch (e) {
      failure = e;
    }
    const waiting = chat.waiting ?? [];
    chat.waiting = undefined;
    for (const message of waiting) {
      const { first, frames } = decodeNotice(message);
      if (first <= chat.next) this.#deliverFrom(chatId, chat, first, frames);
    }
    if (failure !== undefined) throw failure;
  }
}
