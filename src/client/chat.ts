/**
 * One chat as the SDK keeps it: the last seq seen (so a reconnect resumes with
 * `attach {since_seq}`), duplicate dropping (seq ≤ last seen), explicit gap
 * reports, and messages resent with their `client_msg_id` until acknowledged.
 * Seqs only ever grow; they may skip (a restart after a crash continues past the
 * block it had reserved), so a skip is not a gap: the gateway's replay has none.
 */
import type { ChatEvent, ErrorEvent, MessageAck } from "../protocol/events.ts";
import type { Message } from "../protocol/client.ts";
import { Emitter } from "./emitter.ts";
import { TurnCollector } from "./turns.ts";
import type { ChatStreamEvent, TurnSummary } from "./types.ts";

/** What a chat needs from its client: a way to send now (false when disconnected) and the declared tools. */
export interface ChatLink {
  send(frame: object): boolean;
  capabilities(): string[];
}

export interface SendOptions {
  /** Inline media: data URLs with a name (see the gateway's media limits). */
  media?: { data_url: string; name?: string }[];
  /** Media uploaded first with `uploadMedia`. */
  mediaIds?: string[];
}

interface PendingMessage {
  frame: Message;
  resolve: (ack: MessageAck) => void;
  reject: (error: Error) => void;
}

/** getRandomValues, unlike randomUUID, exists outside secure contexts too (a page served over plain http from a LAN address). */
const newId = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");

export class Chat extends Emitter<ChatStreamEvent> {
  #lastSeq: number;
  readonly #pending = new Map<string, PendingMessage>();
  readonly #turns = new TurnCollector();
  /** Duplicates dropped so far (replayed events already seen). */
  duplicatesDropped = 0;

  constructor(
    readonly id: string,
    private readonly link: ChatLink,
    sinceSeq = 0,
  ) {
    super();
    this.#lastSeq = sinceSeq;
  }

  /** The highest seq delivered for this chat. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Sends a message; resolves when the gateway acknowledged it (resent after reconnects until then). */
  send(text: string, options: SendOptions = {}): Promise<MessageAck> {
    const id = newId();
    const frame: Message = {
      type: "message",
      chat_id: this.id,
      content: text,
      client_msg_id: id,
      ...(options.media && { media: options.media }),
      ...(options.mediaIds && { media_ids: options.mediaIds }),
    };
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { frame, resolve, reject });
      this.link.send(frame);
    });
  }

  /** Cancels the chat's running turn. */
  stop(): boolean {
    return this.link.send({ type: "stop", chat_id: this.id });
  }

  /** The next turn of this chat to end, folded into text. */
  nextTurn(): Promise<TurnSummary> {
    return this.once("turn");
  }

  /** After a (re)connect: resume after the last seq seen, then resend what was not acknowledged. */
  resume(): void {
    this.link.send({ type: "attach", chat_id: this.id, since_seq: this.#lastSeq, capabilities: this.link.capabilities() });
    for (const { frame } of this.#pending.values()) this.link.send(frame);
  }

  /** `attached.latest_seq` below what was seen: the chat was deleted or recreated; report it and follow the new stream. */
  attached(latestSeq: number): void {
    if (latestSeq >= this.#lastSeq) return;
    this.emit({ event: "gap", chat_id: this.id, reason: "reset", last_seen_seq: this.#lastSeq, seq: latestSeq });
    this.#lastSeq = latestSeq;
  }

  /** The gateway refused a frame as too big (1009): resending would only repeat it, so unacknowledged sends fail. */
  abandonPending(error: Error): void {
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
  }

  acknowledged(ack: MessageAck): void {
    const pending = this.#pending.get(ack.client_msg_id);
    if (!pending) return;
    this.#pending.delete(ack.client_msg_id);
    pending.resolve(ack);
  }

  /** A chat event from the socket: dropped if already seen, a gap reported if one was skipped. */
  deliver(event: ChatEvent): void {
    const seq = event.seq;
    if (seq !== undefined) {
      if (seq <= this.#lastSeq) {
        this.duplicatesDropped++;
        return;
      }
      this.#lastSeq = seq;
    }
    this.emit(event);
    const turn = this.#turns.add(event);
    if (turn) this.emit(turn);
  }

  failed(error: ErrorEvent): void {
    this.emit(error);
  }
}
