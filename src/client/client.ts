/**
 * A client of one gateway: the connection, the chats it follows, its device
 * tools. Every frame is routed to its chat; after each reconnect every chat
 * resumes where it left off and unacknowledged messages are resent. A new_chat
 * still unanswered when the socket dropped is sent again (the gateway may then
 * have created one extra, empty chat).
 */
import type { Attached, ChatEvent, ErrorEvent, MessageAck, Ready } from "../protocol/events.ts";
import { CLOSE_TOO_BIG } from "../protocol/errors.ts";
import { Chat, type ChatLink } from "./chat.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";
import { Emitter } from "./emitter.ts";
import { Tools } from "./tools.ts";
import type { ClientEvent, ServerFrame } from "./types.ts";

export interface NewChatOptions {
  /** A configured agent to serve the chat instead of the default. */
  agent?: string;
}

interface PendingNewChat {
  frame: object;
  resolve: (chat: Chat) => void;
}

const REPLY_EVENTS = new Set(["ready", "attached", "error", "pong", "message_ack", "runtime_model_updated"]);

export class Client extends Emitter<ClientEvent> {
  readonly #chats = new Map<string, Chat>();
  readonly #newChats: PendingNewChat[] = [];
  readonly #connection: Connection;
  readonly tools: Tools;
  /** What every chat sends through: this client's connection, and its declared tools. */
  readonly #link: ChatLink = { send: (f) => this.#send(f), capabilities: () => this.tools.names() };
  /** The chat the gateway opened for this connection (nanobot's default chat); changes per connection. */
  defaultChatId: string | undefined;

  constructor(options: ConnectionOptions) {
    super();
    this.tools = new Tools((frame) => this.#send(frame));
    this.#connection = new Connection(options, {
      query: (): Record<string, string> => (this.tools.names().length > 0 ? { capabilities: this.tools.names().join(",") } : {}),
      opened: () => this.#resumeAll(),
      frame: (text) => this.#frame(text),
      state: (event) => {
        if (event.event === "refused" && event.code === CLOSE_TOO_BIG) this.#abandonPending(new Error(`gateway closed with ${CLOSE_TOO_BIG}: ${event.reason}`));
        this.emit(event);
      },
    });
  }

  /** Resolves when the client stopped for good (close(), or authentication refused). */
  get done(): Promise<void> {
    return this.#connection.done;
  }

  /** The socket in use now (for tests and diagnostics); closing it makes the client reconnect. */
  get socket(): WebSocket | undefined {
    return this.#connection.rawSocket;
  }

  /** Creates a chat on the gateway (served by `agent` when given). */
  newChat(options: NewChatOptions = {}): Promise<Chat> {
    const frame = { type: "new_chat", ...(options.agent && { agent: options.agent }), capabilities: this.tools.names() };
    return new Promise((resolve) => {
      this.#newChats.push({ frame, resolve });
      this.#send(frame);
    });
  }

  /** Follows an existing chat from `sinceSeq` (0: its whole history), resuming after every reconnect. */
  chat(chatId: string, sinceSeq = 0): Chat {
    const existing = this.#chats.get(chatId);
    if (existing) return existing;
    const chat = new Chat(chatId, this.#link, sinceSeq);
    this.#chats.set(chatId, chat);
    chat.resume();
    return chat;
  }

  /** Application-level ping; the answer arrives as a `pong` event. */
  ping(): boolean {
    return this.#send({ type: "ping" });
  }

  close(): Promise<void> {
    this.#connection.close();
    return this.done;
  }

  #send(frame: object): boolean {
    const ws = this.#connection.socket;
    if (!ws) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  #abandonPending(error: Error): void {
    for (const chat of this.#chats.values()) chat.abandonPending(error);
  }

  #resumeAll(): void {
    for (const chat of this.#chats.values()) chat.resume();
    for (const { frame } of this.#newChats) this.#send(frame);
  }

  #frame(text: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      return;
    }
    if (REPLY_EVENTS.has(frame.event)) this.#reply(frame);
    else this.#chatEvent(frame as ChatEvent);
  }

  #reply(frame: ServerFrame): void {
    switch (frame.event) {
      case "ready":
        this.defaultChatId = (frame as Ready).chat_id;
        break;
      case "attached":
        this.#attached(frame as Attached);
        break;
      case "message_ack":
        this.#chats.get((frame as MessageAck).chat_id)?.acknowledged(frame as MessageAck);
        break;
      case "error": {
        const chatId = (frame as ErrorEvent).chat_id;
        if (chatId !== undefined) this.#chats.get(chatId)?.failed(frame as ErrorEvent);
        break;
      }
    }
    this.emit(frame);
  }

  /** `attached` answers an attach of a known chat, or else the oldest pending new_chat. */
  #attached(frame: Attached): void {
    const known = this.#chats.get(frame.chat_id);
    if (known) return known.attached(frame.latest_seq);
    const pending = this.#newChats.shift();
    if (!pending) return;
    const chat = new Chat(frame.chat_id, this.#link, 0);
    this.#chats.set(frame.chat_id, chat);
    pending.resolve(chat);
  }

  #chatEvent(event: ChatEvent): void {
    const chat = this.#chats.get(event.chat_id);
    const before = chat?.lastSeq;
    chat?.deliver(event);
    if (chat && event.seq !== undefined && chat.lastSeq === before) return;
    this.tools.observe(event);
    this.emit(event);
  }
}
