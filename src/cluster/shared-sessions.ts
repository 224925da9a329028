/**
 * The sessions API of a cluster with `store_postgres_url`: chats are listed and
 * found in the shared metadata (Postgres), so every node answers the same. A
 * rename or delete is written there first (awaited), then announced on one
 * Redis channel so every node's local state follows: its SQLite title, or the
 * chat removed from its hub, transcript, media and SQLite. The chat's
 * `session_updated` is published by the node that writes the chat (the one
 * renaming takes a free lease).
 */
import type { Hub } from "../chat/hub.ts";
import type { SessionDirectory, SessionRow } from "../http/sessions.ts";
import type { Logger } from "../log.ts";
import type { ChatStore } from "../store/chat-store.ts";
import type { SharedMetadata } from "../store/shared-metadata.ts";
import type { ClusterConnection } from "./cluster.ts";

type SessionNotice = { from: string; chat_id: string } & ({ op: "rename"; title: string } | { op: "delete" });

export interface SharedSessionsDeps {
  shared: SharedMetadata;
  connection: ClusterConnection;
  nodeId: string;
  store: ChatStore;
  hub: Hub;
  /** Does this node write the chat now? */
  owns: (chatId: string) => boolean;
  /** Does this node write the chat, taking its lease if nobody holds it? */
  writableHere: (chatId: string) => Promise<boolean>;
  /** The last seq the chat's Redis stream numbered: a delete's floor (what the archive may not take back). */
  numberedSeq: (chatId: string) => Promise<number>;
  /** Removes the chat from this node (turn stopped, hub, transcript, media, SQLite). */
  deleteLocally: (chatId: string) => Promise<void>;
  log: Logger;
}

export class SharedSessions implements SessionDirectory {
  constructor(private readonly deps: SharedSessionsDeps) {}

  /** Listens for other nodes' renames and deletes. */
  async start(): Promise<void> {
    const { connection } = this.deps;
    await connection.subscriber.subscribe(connection.keys.sessions(), (text) => void this.#onNotice(text));
  }

  list(): Promise<SessionRow[]> {
    return this.deps.shared.list();
  }

  get(chatId: string): Promise<SessionRow | undefined> {
    return this.deps.shared.get(chatId);
  }

  async rename(chatId: string, title: string): Promise<void> {
    await this.deps.shared.rename(chatId, title);
    // Postgres has the title now: a Redis failure only keeps the chat's clients from hearing of it.
    const writer = await this.deps.writableHere(chatId).catch((e: unknown) => {
      this.deps.log.warn("could not find a renamed chat's writer", { chat_id: chatId, error: String(e) });
      return false;
    });
    this.#retitle(chatId, title, writer);
    await this.#announce({ op: "rename", chat_id: chatId, title, from: this.deps.nodeId });
  }

  async delete(chatId: string): Promise<void> {
    // The archive may be behind the stream: the floor counts what Redis numbered, so a late archive write brings none of it back.
    const numbered = await this.deps.numberedSeq(chatId).catch((e: unknown) => {
      this.deps.log.warn("could not read a deleted chat's last seq from Redis; its floor is what PostgreSQL holds", { chat_id: chatId, error: String(e) });
      return 0;
    });
    await this.deps.shared.delete(chatId, numbered);
    await this.deps.deleteLocally(chatId);
    await this.#announce({ op: "delete", chat_id: chatId, from: this.deps.nodeId });
  }

  /** The local row follows the shared one; the chat's writer tells its clients. */
  #retitle(chatId: string, title: string, writer: boolean): void {
    if (this.deps.store.get(chatId)) this.deps.store.setTitle(chatId, title, false);
    if (writer) this.deps.hub.publish({ event: "session_updated", chat_id: chatId, scope: "metadata", title });
  }

  async #announce(notice: SessionNotice): Promise<void> {
    const { connection } = this.deps;
    await connection.redis.publish(connection.keys.sessions(), JSON.stringify(notice)).catch((e: unknown) => {
      // Postgres has it already: other nodes' lists are right, only their local copies lag.
      this.deps.log.warn("could not tell other nodes of a session change", { chat_id: notice.chat_id, op: notice.op, error: String(e) });
    });
  }

  async #onNotice(text: string): Promise<void> {
    let notice: SessionNotice;
    try {
      notice = JSON.parse(text) as SessionNotice;
    } catch {
      return;
    }
    if (notice.from === this.deps.nodeId) return;
    try {
      if (notice.op === "rename") this.#retitle(notice.chat_id, notice.title, this.deps.owns(notice.chat_id));
      else await this.deps.deleteLocally(notice.chat_id);
    } catch (e) {
      this.deps.log.error("could not apply another node's session change", { chat_id: notice.chat_id, op: notice.op, error: String(e) });
    }
  }
}
