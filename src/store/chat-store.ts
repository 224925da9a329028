/**
 * Chats and turns in SQLite. Hot queries are prepared once (the query builder
 * re-prepares on every call). Nothing here runs per streamed event: rows change
 * when a chat is created, a turn starts or ends, or a block of seqs is reserved.
 */
import { desc, eq, sql } from "drizzle-orm";
import type { Db } from "./db.ts";
import { chats, type TurnRowStatus, turns } from "./schema.ts";

export type ChatRow = typeof chats.$inferSelect;
export type ChatMetadata = Record<string, unknown>;

const PREVIEW_CHARS = 120;

export class ChatStore {
  readonly #getChat;
  readonly #insertChat;
  readonly #setLastSeq;
  readonly #insertTurn;
  readonly #endTurn;

  constructor(
    private readonly db: Db,
    /** The agent recorded on chats created without one. */
    private readonly defaultAgent: string,
  ) {
    this.#getChat = db.select().from(chats).where(eq(chats.id, sql.placeholder("id"))).prepare();
    this.#insertChat = db
      .insert(chats)
      .values({
        id: sql.placeholder("id"),
        createdAt: sql.placeholder("now"),
        updatedAt: sql.placeholder("now"),
        metadata: sql.placeholder("metadata"),
        lastSeq: 0,
        agent: sql.placeholder("agent"),
      })
      .onConflictDoNothing()
      .prepare();
    this.#setLastSeq = db.update(chats).set({ lastSeq: sql.placeholder("seq") as unknown as number }).where(eq(chats.id, sql.placeholder("id"))).prepare();
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

  /** The chat's row, created on first use. */
  ensure(chatId: string): ChatRow {
    this.#insertChat.run({ id: chatId, now: new Date(), metadata: {}, agent: this.defaultAgent });
    return this.get(chatId)!;
  }

  setLastSeq(chatId: string, seq: number): void {
    this.#setLastSeq.run({ id: chatId, seq });
  }

  metadata(chatId: string): ChatMetadata | undefined {
    return this.get(chatId)?.metadata;
  }

  mergeMetadata(chatId: string, patch: ChatMetadata): void {
    const row = this.ensure(chatId);
    this.db.update(chats).set({ metadata: { ...row.metadata, ...patch }, updatedAt: new Date() }).where(eq(chats.id, chatId)).run();
  }

  /** Records a user message: bumps updated_at and keeps the first text as the preview. */
  noteUserMessage(chatId: string, text: string): void {
    const row = this.ensure(chatId);
    const preview = row.preview ?? text.replace(/\s+/g, " ").trim().slice(0, PREVIEW_CHARS);
    this.db.update(chats).set({ preview, updatedAt: new Date() }).where(eq(chats.id, chatId)).run();
  }

  setTitle(chatId: string, title: string): void {
    this.db.update(chats).set({ title, updatedAt: new Date() }).where(eq(chats.id, chatId)).run();
  }

  /** Newest first. */
  list(): ChatRow[] {
    return this.db.select().from(chats).orderBy(desc(chats.updatedAt)).all();
  }

  delete(chatId: string): boolean {
    return this.db.delete(chats).where(eq(chats.id, chatId)).returning({ id: chats.id }).all().length > 0;
  }

  turnStarted(turnId: string, chatId: string, startedAt: Date): void {
    this.ensure(chatId);
    this.#insertTurn.run({ id: turnId, chatId, startedAt });
  }

  turnEnded(turnId: string, status: TurnRowStatus, latencyMs: number, error: string | undefined): void {
    this.#endTurn.run({ id: turnId, status, endedAt: new Date(), latencyMs, error: error ?? null });
  }

  /** Turns a previous process left running (it crashed or was killed). */
  runningTurns(): { id: string; chatId: string; startedAt: Date }[] {
    return this.db.select({ id: turns.id, chatId: turns.chatId, startedAt: turns.startedAt }).from(turns).where(eq(turns.status, "running")).all();
  }
}
