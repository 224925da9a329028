/**
 * Chats and turns in SQLite. Hot queries are prepared once (the query builder
 * re-prepares on every call). Nothing here runs per streamed event: rows change
 * when a chat is created, a turn starts or ends, or a block of seqs is reserved.
 *
 * Seq reservations are written at once (numbering must never repeat after a
 * crash, nor after a chat is deleted and its id comes back: deleted_chats). Bookkeeping (turn rows, previews) is written behind: queued and
 * committed in one transaction on the next event-loop turn, which is always
 * before the transcript's next flush, so no turn's events reach disk without its row.
 *
 * In a cluster with `store_postgres_url`, every change is also queued for the
 * shared metadata (SharedMetadata writes it behind, batched and retried).
 */
import { desc, eq, type Placeholder, sql } from "drizzle-orm";
import type { Db } from "./db.ts";
import type { SharedMetadata } from "./shared-metadata.ts";
import { chats, deletedChats, type TurnRowStatus, turns } from "./schema.ts";

export type ChatRow = typeof chats.$inferSelect;
export type ChatMetadata = Record<string, unknown>;

const PREVIEW_CHARS = 120;
/** Queued bookkeeping that failed to commit is tried again this much later. */
const BOOKKEEPING_RETRY_MS = 1000;

export class ChatStore {
  readonly #getChat;
  readonly #insertChat;
  readonly #reserveSeq;
  readonly #noteMessage;
  readonly #insertTurn;
  readonly #endTurn;
  readonly #getDeleted;
  /** Chats known to have a row, so hot paths skip the insert-or-ignore. */
  readonly #known = new Set<string>();
  /** Bookkeeping writes waiting for the next transaction. */
  #behind: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    /** The agent recorded on chats created without one. */
    private readonly defaultAgent: string,
    /** Told when queued bookkeeping could not be written (it is retried). */
    private readonly onError: (error: unknown) => void,
    /** The cluster's shared metadata, when configured. */
    private readonly shared?: SharedMetadata,
  ) {
    this.#getDeleted = db.select().from(deletedChats).where(eq(deletedChats.id, sql.placeholder("id"))).prepare();
    this.#getChat = db.select().from(chats).where(eq(chats.id, sql.placeholder("id"))).prepare();
    const newChat = (lastSeq: number | Placeholder) => ({
      id: sql.placeholder("id"),
      createdAt: sql.placeholder("now"),
      updatedAt: sql.placeholder("now"),
      metadata: sql.placeholder("metadata"),
      lastSeq,
      agent: sql.placeholder("agent"),
    });
    this.#insertChat = db.insert(chats).values(newChat(0)).onConflictDoNothing().prepare();
    this.#reserveSeq = db
      .insert(chats)
      .values(newChat(sql.placeholder("seq")))
      .onConflictDoUpdate({ target: chats.id, set: { lastSeq: sql`excluded.last_seq` } })
      .prepare();
    this.#noteMessage = db
      .update(chats)
      .set({ updatedAt: sql.placeholder("now") as unknown as Date, preview: sql`coalesce(${chats.preview}, ${sql.placeholder("preview")})` })
      .where(eq(chats.id, sql.placeholder("id")))
      .prepare();
    this.#insertTurn = db
      .insert(turns)
      .values({ id: sql.placeholder("id"), chatId: sql.placeholder("chatId"), status: "running", startedAt: sql.placeholder("startedAt") })
      .prepare();
    this.#endTurn = db
      .update(turns)
      .set({
        status: sql.placeholder("status") as unknown as TurnRowStatus,
        endedAt: sql.placeholder("endedAt") as unknown as Date,
        latencyMs: sql.placeholder("latencyMs") as unknown as number,
        error: sql.placeholder("error") as unknown as string,
      })
      .where(eq(turns.id, sql.placeholder("id")))
      .prepare();
  }

  get(chatId: string): ChatRow | undefined {
    return this.#getChat.get({ id: chatId });
  }

  /** Creates a chat served by a given agent (new_chat with agent). */
  createChat(chatId: string, agent: string): void {
    this.#insertChat.run({ id: chatId, now: new Date(), metadata: {}, agent });
    this.#known.add(chatId);
    this.#share(chatId);
  }

  /** The agent serving the chat, if the chat exists. */
  agentOf(chatId: string): string | undefined {
    return this.get(chatId)?.agent;
  }

  /** Creates the chat's row unless it exists. */
  ensure(chatId: string): void {
    if (this.#known.has(chatId)) return;
    this.#insertChat.run({ id: chatId, now: new Date(), metadata: {}, agent: this.defaultAgent });
    this.#known.add(chatId);
    this.#share(chatId);
  }

  /** Records (creating the chat if needed) the highest seq the chat may use; written at once. */
  reserveSeq(chatId: string, through: number): void {
    this.#reserveSeq.run({ id: chatId, now: new Date(), metadata: {}, seq: through, agent: this.defaultAgent });
    this.#known.add(chatId);
    if (this.shared) {
      this.#share(chatId);
      this.shared.seqReserved(chatId, through);
    }
  }

  /** The chat's row, as it is here, to the shared metadata (kept there if it has it already). */
  #share(chatId: string): void {
    if (this.shared) this.shared.chatCreated(this.get(chatId)!);
  }

  /**
   * Commits queued bookkeeping now (the next event-loop turn does it anyway;
   * shutdown calls this). A failure (disk full) is logged and the whole batch
   * kept and retried later: it never escapes into the event loop.
   */
  flush(): boolean {
    const ops = this.#behind;
    if (ops.length === 0) return true;
    try {
      this.db.$client.transaction(() => {
        for (const op of ops) op();
      })();
    } catch (e) {
      this.onError(e);
      setTimeout(() => this.flush(), BOOKKEEPING_RETRY_MS);
      return false;
    }
    this.#behind = [];
    return true;
  }

  #later(op: () => void): void {
    if (this.#behind.push(op) === 1) setImmediate(() => this.flush());
  }

  /** The highest seq the chat may have used, counting a deleted chat of the same id. */
  seqFloor(chatId: string): number {
    return Math.max(this.get(chatId)?.lastSeq ?? 0, this.deletedSeq(chatId));
  }

  /** The highest seq a deleted chat of this id used (0 if none was deleted). */
  deletedSeq(chatId: string): number {
    return this.#getDeleted.get({ id: chatId })?.lastSeq ?? 0;
  }

  metadata(chatId: string): ChatMetadata | undefined {
    return this.get(chatId)?.metadata;
  }

  mergeMetadata(chatId: string, patch: ChatMetadata): void {
    this.ensure(chatId);
    const row = this.get(chatId)!;
    const metadata = { ...row.metadata, ...patch };
    const now = new Date();
    this.db.update(chats).set({ metadata, updatedAt: now }).where(eq(chats.id, chatId)).run();
    this.shared?.metadataSet(chatId, metadata, now);
  }

  /** Records a user message: bumps updated_at and keeps the first text as the preview. */
  noteUserMessage(chatId: string, text: string): void {
    const preview = text.replace(/\s+/g, " ").trim().slice(0, PREVIEW_CHARS);
    const now = new Date();
    this.#later(() => {
      this.ensure(chatId);
      this.#noteMessage.run({ id: chatId, now, preview });
      this.shared?.userMessage(chatId, now, preview);
    });
  }

  /** `shared: false` when the title came from the shared metadata (a rename on another node). */
  setTitle(chatId: string, title: string, shared = true): void {
    const now = new Date();
    this.db.update(chats).set({ title, updatedAt: now }).where(eq(chats.id, chatId)).run();
    if (shared) this.shared?.titleSet(chatId, title, now);
  }

  /** Newest first. */
  list(): ChatRow[] {
    return this.db.select().from(chats).orderBy(desc(chats.updatedAt)).all();
  }

  /** Deletes the chat's row (turns and media rows cascade), keeping its highest seq in deleted_chats. */
  delete(chatId: string): boolean {
    this.#known.delete(chatId);
    const floor = this.seqFloor(chatId);
    this.shared?.chatDeleted(chatId, floor);
    return this.db.transaction((tx) => {
      tx.insert(deletedChats).values({ id: chatId, lastSeq: floor }).onConflictDoUpdate({ target: deletedChats.id, set: { lastSeq: floor } }).run();
      return tx.delete(chats).where(eq(chats.id, chatId)).returning({ id: chats.id }).all().length > 0;
    });
  }

  turnStarted(turnId: string, chatId: string, startedAt: Date): void {
    this.#later(() => {
      this.ensure(chatId);
      this.#insertTurn.run({ id: turnId, chatId, startedAt });
      this.shared?.turnStarted(turnId, chatId, startedAt);
    });
  }

  turnEnded(turnId: string, status: TurnRowStatus, latencyMs: number, error: string | undefined): void {
    const endedAt = new Date();
    this.#later(() => {
      this.#endTurn.run({ id: turnId, status, endedAt, latencyMs, error: error ?? null });
      this.shared?.turnEnded(turnId, status, endedAt, latencyMs, error ?? null);
    });
  }

  /** Turns a previous process left running (it crashed or was killed). */
  runningTurns(): { id: string; chatId: string; startedAt: Date }[] {
    return this.db.select({ id: turns.id, chatId: turns.chatId, startedAt: turns.startedAt }).from(turns).where(eq(turns.status, "running")).all();
  }
}
