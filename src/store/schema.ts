/**
 * The SQLite schema (Drizzle), each node's own store. Its PostgreSQL twin, the
 * tables a cluster shares as its metadata of record, is schema-pg.ts (same
 * table and column names). Migrations in drizzle/ are generated from this file
 * with `npm run db:generate`; never edit them by hand.
 *
 * A chat's transcript path is derived from its id (transcripts/<id>.jsonl; the
 * chat_id alphabet has no "/" or "."), so it is not stored.
 */
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const TURN_STATUSES = ["running", "done", "error", "cancelled", "interrupted"] as const;
export type TurnRowStatus = (typeof TURN_STATUSES)[number];

export const chats = sqliteTable(
  "chats",
  {
    id: text("id").primaryKey(),
    title: text("title"),
    /** First user text, whitespace collapsed, for session lists. */
    preview: text("preview"),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
    metadata: text("metadata", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    /**
     * Highest seq this chat may have used. Reserved in blocks ahead of use, so a
     * crash can skip numbers but never hand one out twice; exact after a clean stop.
     */
    lastSeq: integer("last_seq").notNull(),
    agent: text("agent").notNull(),
  },
  (t) => [index("chats_updated_idx").on(t.updatedAt)],
);

export const turns = sqliteTable(
  "turns",
  {
    id: text("id").primaryKey(),
    chatId: text("chat_id")
      .notNull()
      .references(() => chats.id, { onDelete: "cascade" }),
    status: text("status", { enum: TURN_STATUSES }).notNull(),
    startedAt: integer("started_at", { mode: "timestamp_ms" }).notNull(),
    endedAt: integer("ended_at", { mode: "timestamp_ms" }),
    latencyMs: integer("latency_ms"),
    error: text("error"),
  },
  (t) => [index("turns_chat_idx").on(t.chatId), index("turns_status_idx").on(t.status)],
);

/**
 * What remains of a deleted chat: the highest seq it ever reserved, so the same
 * id coming back continues past it and a client holding an old `since_seq` is
 * never fed a different history as if it were the same one.
 */
export const deletedChats = sqliteTable("deleted_chats", {
  id: text("id").primaryKey(),
  lastSeq: integer("last_seq").notNull(),
});

/**
 * One row per stored file. `path` is relative to `<data_dir>/media`. `chatId` is
 * null for an upload no message has referenced yet.
 */
export const media = sqliteTable(
  "media",
  {
    id: text("id").primaryKey(),
    chatId: text("chat_id").references(() => chats.id, { onDelete: "cascade" }),
    path: text("path").notNull().unique(),
    mime: text("mime").notNull(),
    name: text("name").notNull(),
    size: integer("size").notNull(),
    sha256: text("sha256").notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [index("media_chat_idx").on(t.chatId)],
);

/**
 * client_msg_ids a chat accepted, so a resend (also after a restart or a crash)
 * is acknowledged instead of run twice. `id` only grows, so the oldest rows are
 * a range of it: the count bound is one range delete.
 */
export const clientMessageIds = sqliteTable(
  "client_msg_ids",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    chatId: text("chat_id")
      .notNull()
      .references(() => chats.id, { onDelete: "cascade" }),
    clientMsgId: text("client_msg_id").notNull(),
    acceptedAt: integer("accepted_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [uniqueIndex("client_msg_ids_chat_msg_idx").on(t.chatId, t.clientMsgId), index("client_msg_ids_accepted_idx").on(t.acceptedAt)],
);

