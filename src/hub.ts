/**
 * The hub: one ordered event stream per chat, fanned out through native Bun
 * pub/sub topics on every listener.
 *
 * `publish` is the hot path. It assigns the chat's next `seq`, serializes the
 * event once, and hands the same string to each listener's native `publish`
 * (uWS walks its topic tree; there is no JS loop per subscriber). Bun's publish
 * only reaches sockets of the server it is called on, hence one call per listener.
 */
import type { Server } from "bun";
import type { ChatEvent } from "./protocol/events.ts";

/** Every client connection subscribes to this topic: events for all, e.g. runtime_model_updated. */
export const EVERYONE_TOPIC = "everyone";

interface ChatStream {
  topic: string;
  lastSeq: number;
}

/** Called once per published event with the serialized frame: the transcript hand-off. */
export type EventSink = (chatId: string, seq: number, frame: string) => void;

// The hub publishes through listeners whatever their per-connection data type.
type AnyServer = Server<any>;

export class Hub {
  readonly #listeners = new Set<AnyServer>();
  readonly #chats = new Map<string, ChatStream>();
  #sink: EventSink | undefined;

  addListener(server: AnyServer): void {
    this.#listeners.add(server);
  }

  removeListener(server: AnyServer): void {
    this.#listeners.delete(server);
  }

  /** Receives every published chat event after fan-out (at most one sink). */
  setSink(sink: EventSink): void {
    this.#sink = sink;
  }

  static topicOf(chatId: string): string {
    return `chat:${chatId}`;
  }

  latestSeq(chatId: string): number {
    return this.#chats.get(chatId)?.lastSeq ?? 0;
  }

  /** Publishes a chat event; fills in and returns its `seq`. */
  publish(event: ChatEvent): number {
    const chat = this.#stream(event.chat_id);
    const seq = ++chat.lastSeq;
    event.seq = seq;
    const frame = JSON.stringify(event);
    for (const server of this.#listeners) server.publish(chat.topic, frame);
    this.#sink?.(event.chat_id, seq, frame);
    return seq;
  }

  /** Sends a frame to every open client connection on every listener (not part of any chat). */
  broadcast(frame: object): void {
    const text = JSON.stringify(frame);
    for (const server of this.#listeners) server.publish(EVERYONE_TOPIC, text);
  }

  /** Connections subscribed to a chat, across listeners. */
  subscriberCount(chatId: string): number {
    const topic = Hub.topicOf(chatId);
    let n = 0;
    for (const server of this.#listeners) n += server.subscriberCount(topic);
    return n;
  }

  #stream(chatId: string): ChatStream {
    let chat = this.#chats.get(chatId);
    if (!chat) {
      chat = { topic: Hub.topicOf(chatId), lastSeq: 0 };
      this.#chats.set(chatId, chat);
    }
    return chat;
  }
}
