/**
 * The client_msg_ids each chat accepted, kept in SQLite so resend protection
 * survives a restart or a crash: a resend after a crash is exactly when a client
 * needs it. `accept` writes synchronously (bun:sqlite; WAL commit reaches the
 * kernel before it returns), and callers accept an id before they publish the
 * message's `user` event: durable before visible.
 *
 * Bounded by count (the oldest rows go first, one range delete on the growing
 * primary key) and by age (older ids no longer count and are deleted as newer
 * ones arrive). Rows go with their chat (foreign key, cascade).
 */
import { and, eq, gte, lt, lte, sql } from "drizzle-orm";
import type { Db } from "./db.ts";
import { clientMessageIds } from "./schema.ts";

export interface MessageIdLimits {
  /** Most ids kept across all chats; 0 keeps none (no resend protection). */
  maxIds: number;
  maxAgeMs: number;
}

export class AcceptedMessageIds {
  readonly #find;
  readonly #insert;
  readonly #forget;
  readonly #dropThrough;
  readonly #dropOlder;
  readonly #acceptAtomically: (chatId: string, clientMsgId: string, now: number) => void;

  constructor(
    db: Db,
    private readonly limits: MessageIdLimits,
    private readonly now: () => number = Date.now,
  ) {
    const t = clientMessageIds;
    const chatAndId = and(eq(t.chatId, sql.placeholder("chat")), eq(t.clientMsgId, sql.placeholder("id")));
    this.#find = db.select({ id: t.id }).from(t).where(and(chatAndId, gte(t.acceptedAt, sql.placeholder("since")))).prepare();
    this.#insert = db
      .insert(t)
      .values({ chatId: sql.placeholder("chat"), clientMsgId: sql.placeholder("id"), acceptedAt: sql.placeholder("now") })
      .returning({ id: t.id })
      .prepare();
    this.#forget = db.delete(t).where(chatAndId).prepare();
    this.#dropThrough = db.delete(t).where(lte(t.id, sql.placeholder("id"))).prepare();
    this.#dropOlder = db.delete(t).where(lt(t.acceptedAt, sql.placeholder("before"))).prepare();
    this.#dropOlder.run({ before: this.now() - limits.maxAgeMs });
    this.#acceptAtomically = db.$client.transaction((chatId: string, clientMsgId: string, now: number) => {
      // An aged-out id accepted again is a new row: the newest id is always the newest row.
      this.#forget.run({ chat: chatId, id: clientMsgId });
      const [row] = this.#insert.all({ chat: chatId, id: clientMsgId, now: new Date(now) });
      this.#dropThrough.run({ id: row!.id - this.limits.maxIds });
      this.#dropOlder.run({ before: now - this.limits.maxAgeMs });
    });
  }

  /** Did this chat accept this id (within the age bound)? */
  has(chatId: string, clientMsgId: string): boolean {
    if (this.limits.maxIds === 0) return false;
    return this.#find.get({ chat: chatId, id: clientMsgId, since: this.now() - this.limits.maxAgeMs }) !== undefined;
  }

  /** Records an accepted id, written before this returns. The chat's row must exist. */
  accept(chatId: string, clientMsgId: string): void {
    if (this.limits.maxIds === 0) return;
    this.#acceptAtomically(chatId, clientMsgId, this.now());
  }
}
