/**
 * The schema (Drizzle), both dialects: SQLite, each node's own store, and the
 * PostgreSQL tables a cluster shares as its metadata of record (same table and
 * column names; see src/store/shared-metadata.ts). Migrations in drizzle/ and
 * drizzle/pg/ are generated from this file with `npm run db:generate`; never
 * edit them by hand.
 *
 * A chat's transcript path is derived from its id (transcripts/<id>.jsonl; the
 * chat_id alphabet has no "/" or "."), so it is not stored.
 */
import { bigint, index as pgIndex, jsonb, pgTable, text as pgText, timestamp } from "drizzle-orm/pg-core";
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

/*
 * PostgreSQL: what every node of a cluster reads for the sessions API. Written
 * behind by each node's ChatStore (never on the per-event path). Seq
 * reservations and client_msg_ids are not here: a cluster numbers through Redis
 * and remembers client_msg_ids there.
 */
const pgTime = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const pgChats = pgTable(
  "chats",
  {
    id: pgText("id").primaryKey(),
    title: pgText("title"),
    preview: pgText("preview"),
    createdAt: pgTime("created_at").notNull(),
    updatedAt: pgTime("updated_at").notNull(),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull(),
    /** Highest seq any node reserved for the chat. */
    lastSeq: bigint("last_seq", { mode: "number" }).notNull(),
    agent: pgText("agent").notNull(),
  },
  (t) => [pgIndex("chats_updated_idx").on(t.updatedAt)],
);

export const pgTurns = pgTable(
  "turns",
  {
    id: pgText("id").primaryKey(),
    chatId: pgText("chat_id")
      .notNull()
      .references(() => pgChats.id, { onDelete: "cascade" }),
    status: pgText("status", { enum: TURN_STATUSES }).notNull(),
    startedAt: pgTime("started_at").notNull(),
    endedAt: pgTime("ended_at"),
    latencyMs: bigint("latency_ms", { mode: "number" }),
    error: pgText("error"),
  },
  (t) => [pgIndex("turns_chat_idx").on(t.chatId), pgIndex("turns_status_idx").on(t.status)],
);

export const pgDeletedChats = pgTable("deleted_chats", {
  id: pgText("id").primaryKey(),
  lastSeq: bigint("last_seq", { mode: "number" }).notNull(),
});

export const pgMedia = pgTable(
  "media",
  {
    id: pgText("id").primaryKey(),
    chatId: pgText("chat_id").references(() => pgChats.id, { onDelete: "cascade" }),
    /** Relative to the writing node's `<data_dir>/media` (files are per node). */
    path: pgText("path").notNull(),
    mime: pgText("mime").notNull(),
    name: pgText("name").notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    sha256: pgText("sha256").notNull(),
    createdAt: pgTime("created_at").notNull(),
  },
  (t) => [pgIndex("media_chat_idx").on(t.chatId)],
);
