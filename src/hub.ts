/**
 * The hub: one ordered event stream per chat, fanned out through native Bun
 * pub/sub topics on every listener.
 *
 * `publish` is the hot path. It assigns the chat's next `seq`, serializes the
 * event once, hands the same string to each listener's native `publish` (uWS
 * walks its topic tree; there is no JS loop per subscriber), keeps it in the
 * chat's replay ring and queues it for the transcript. Nothing on it awaits.
 * Bun's publish only reaches sockets of the server it is called on, hence one
 * call per listener.
 */
import type { Server } from "bun";
import type { ChatEvent } from "./protocol/events.ts";
import { ReplayRing, type RingLimits } from "./replay-ring.ts";

/** Every client connection subscribes to this topic: events for all, e.g. runtime_model_updated. */
export const EVERYONE_TOPIC = "everyone";

/**
 * Seqs are reserved in the store this many at a time, ahead of use: one small
 * write per block instead of per event, and after a crash numbering resumes
 * past anything a client may have seen (a gap, never a reuse).
 */
const SEQ_BLOCK = 1024;

/** Where the hub keeps what must outlive the process. */
export interface HubStorage {
  /** The highest seq ever reserved for the chat; 0 for a chat never seen. */
  loadSeq(chatId: string): number;
  reserveSeq(chatId: string, through: number): void;
  /** Queues one serialized event for the chat's transcript (must not block). */
  append(chatId: string, seq: number, frame: string): void;
}

export interface HubLimits {
  ring: RingLimits;
  /** Across all chats; beyond it the oldest chats' rings give up their flushed events. */
  ringTotalBytes: number;
}

export interface ChatStream {
  readonly topic: string;
  lastSeq: number;
  reservedThrough: number;
  flushedThrough: number;
  readonly ring: ReplayRing;
}

// The hub publishes through listeners whatever their per-connection data type.
type AnyServer = Server<any>;

export class Hub {
  readonly #listeners = new Set<AnyServer>();
  readonly #chats = new Map<string, ChatStream>();
  #ringBytes = 0;
  #reliefScheduled = false;

  constructor(
    private readonly storage: HubStorage,
    private readonly limits: HubLimits,
  ) {}

  addListener(server: AnyServer): void {
    this.#listeners.add(server);
  }

  removeListener(server: AnyServer): void {
    this.#listeners.delete(server);
  }

  static topicOf(chatId: string): string {
    return `chat:${chatId}`;
  }

  latestSeq(chatId: string): number {
    return this.#chats.get(chatId)?.lastSeq ?? this.storage.loadSeq(chatId);
  }

  /** The chat's in-memory stream (loaded on first use), for replay. */
  stream(chatId: string): ChatStream {
    let chat = this.#chats.get(chatId);
    if (!chat) {
      const seq = this.storage.loadSeq(chatId);
      chat = { topic: Hub.topicOf(chatId), lastSeq: seq, reservedThrough: seq, flushedThrough: seq, ring: new ReplayRing(seq) };
      this.#chats.set(chatId, chat);
    }
    return chat;
  }

  /**
   * Publishes a chat event; fills in and returns its `seq`. An event's `private`
   * part (original text, server paths) goes to the transcript only: clients get
   * the event without it, serialized once more for that rare case.
   */
  publish(event: ChatEvent & { private?: object }): number {
    const chat = this.stream(event.chat_id);
    const seq = ++chat.lastSeq;
    if (seq > chat.reservedThrough) {
      chat.reservedThrough = seq + SEQ_BLOCK - 1;
      this.storage.reserveSeq(event.chat_id, chat.reservedThrough);
    }
    event.seq = seq;
    const stored = JSON.stringify(event);
    const frame = event.private === undefined ? stored : JSON.stringify({ ...event, private: undefined });
    for (const server of this.#listeners) server.publish(chat.topic, frame);
    chat.ring.push(seq, frame);
    this.#ringBytes += frame.length;
    this.storage.append(event.chat_id, seq, stored);
    return seq;
  }

  /** The transcript now holds the chat's events through `seq`: they may leave the ring. */
  flushed(chatId: string, seq: number): void {
    const chat = this.#chats.get(chatId);
    if (!chat) return;
    chat.flushedThrough = seq;
    this.#ringBytes -= chat.ring.evict(seq, this.limits.ring);
    if (this.#ringBytes > this.limits.ringTotalBytes && !this.#reliefScheduled) {
      this.#reliefScheduled = true;
      setImmediate(() => this.#relieveMemory());
    }
  }

  /** Sends a frame to every open client connection on every listener (not part of any chat). */
  broadcast(frame: object): void {
    const text = JSON.stringify(frame);
    for (const server of this.#listeners) server.publish(EVERYONE_TOPIC, text);
  }

  /** The chat was deleted: forget its stream. */
  forget(chatId: string): void {
    const chat = this.#chats.get(chatId);
    if (!chat) return;
    this.#ringBytes -= chat.ring.bytes;
    this.#chats.delete(chatId);
  }

  /** Clean shutdown: record each chat's exact last seq, so numbering continues without a gap. */
  settle(): void {
    for (const [chatId, chat] of this.#chats) if (chat.reservedThrough > chat.lastSeq) this.storage.reserveSeq(chatId, chat.lastSeq);
  }

  /**
   * Over the global cap (at most once per event-loop turn): each chat keeps at most
   * an equal share of the cap, oldest events out first, unflushed events always kept.
   */
  #relieveMemory(): void {
    this.#reliefScheduled = false;
    const share = { maxEvents: this.limits.ring.maxEvents, maxBytes: Math.min(this.limits.ring.maxBytes, this.limits.ringTotalBytes / this.#chats.size) };
    for (const chat of this.#chats.values()) this.#ringBytes -= chat.ring.evict(chat.flushedThrough, share);
  }
}
