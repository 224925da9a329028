/** Which store an issued token belongs to: single-use WebSocket tokens, API tokens, a local browser's bootstrap token on REST. */
export type TokenKind = "ws" | "api" | "browser";

const NOTIFY = "notify";
const NOTIFY_SUFFIX = `}:${NOTIFY}`;

/**
 * Every Redis key and channel the cluster uses, named in one place. A chat's
 * keys share a `{chat_id}` hash tag so one Lua script may touch them all (they
 * land in one slot should the Redis ever be a Redis Cluster).
 */
export class ClusterKeys {
  constructor(private readonly prefix: string) {}

  /** A key or channel of one chat: `<prefix>{<chat_id>}:<what>`. */
  #ofChat(chatId: string, what: string): string {
    return `${this.prefix}{${chatId}}:${what}`;
  }

  /** The lease: `<epoch>:<node_id>` while a node owns the chat, with the lease's TTL. */
  owner(chatId: string): string {
    return this.#ofChat(chatId, "owner");
  }

  /** The chat's epoch counter (INCR on every acquisition): never reused, so a stale owner's token never matches again. */
  epoch(chatId: string): string {
    return this.#ofChat(chatId, "epoch");
  }

  /** The hot history: a capped stream whose entry ids are `<seq>-0`. */
  stream(chatId: string): string {
    return this.#ofChat(chatId, "events");
  }

  /** The last seq appended (kept when the stream is trimmed): numbering after a takeover continues past it. */
  lastSeq(chatId: string): string {
    return this.#ofChat(chatId, "last");
  }

  /** The seq through which the chat's events are in the durable archive (archiver.ts): the stream is trimmed only below it. */
  archived(chatId: string): string {
    return this.#ofChat(chatId, "archived");
  }

  /** `<fence token> <since> <through>`: the lease that appended last, the last seq before its first append, the last it appended (event-log.ts, retries). */
  appender(chatId: string): string {
    return this.#ofChat(chatId, "appender");
  }

  /** The chat's capable devices: field `<node_id> <tool>`, value how many of that node's clients of the chat declared the tool (devices.ts). */
  devices(chatId: string): string {
    return this.#ofChat(chatId, "devices");
  }

  /** Present while the node is alive (a TTL it renews): a node's device counts count only while it is. */
  nodeAlive(nodeId: string): string {
    return `${this.prefix}node:${nodeId}:alive`;
  }

  /** Pub/sub channel announcing each appended batch to the nodes that follow the chat. */
  channel(chatId: string): string {
    return this.#ofChat(chatId, NOTIFY);
  }

  /** The chat a notify channel belongs to, or undefined for another channel. */
  chatOfChannel(channel: string): string | undefined {
    if (!channel.startsWith(`${this.prefix}{`) || !channel.endsWith(NOTIFY_SUFFIX)) return undefined;
    return channel.slice(this.prefix.length + 1, -NOTIFY_SUFFIX.length);
  }

  /** A node's inbox: messages forwarded to it as a chat's writer, and the replies to messages it forwarded. */
  inbox(nodeId: string): string {
    return `${this.prefix}node:${nodeId}:inbox`;
  }

  /** The inline media of a message forwarded to a chat's writer (by the forwarding node's ref), read once, with a short TTL. */
  forwardedMedia(ref: string): string {
    return `${this.prefix}forward:${ref}:media`;
  }

  /** Channel on which a node asks every other for a chat's events its stream no longer holds (history.ts). */
  historyRequests(): string {
    return `${this.prefix}history`;
  }

  /** The answer to a history request (by the asking node's ref), read once, with a TTL. */
  historyAnswer(ref: string): string {
    return `${this.prefix}history:${ref}`;
  }

  /** Channel telling every node of a rename or delete made through the sessions API on one of them. */
  sessions(): string {
    return `${this.prefix}sessions`;
  }

  /** A live issued token, by the SHA-256 of the token (the Redis never holds a usable credential). */
  token(kind: TokenKind, digest: string): string {
    return `${this.prefix}token:${kind}:${digest}`;
  }
}
