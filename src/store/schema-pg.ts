/**
 * The PostgreSQL schema (Drizzle) of a cluster with `store_postgres_url`: the
 * SQLite tables of schema.ts that every node reads for the sessions API, with
 * the same table and column names, written behind by each node
 * (shared-metadata.ts; never on the per-event path). Seq reservations are per
 * node (a cluster numbers through Redis) and client_msg_ids ride in the Redis
 * stream, so neither table is here. chat_events is the cluster's durable
 * history (archiver.ts), older than what the chats' Redis streams keep. Migrations in drizzle/pg/ are generated
 * from this file with `npm run db:generate`; never edit them by hand.
 *
 * A module of its own, not beside the SQLite tables in schema.ts: loading
 * drizzle-orm/pg-core costs a single node about 10 ms of CPU at every start
 * (measured with the startup bench), and a single node never uses it.
 */
import { bigint, index, jsonb, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";
import { TURN_STATUSES } from "./schema.ts";

const pgTime = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const pgChats = pgTable(
  "chats",
  {
    id: text("id").primaryKey(),
    title: text("title"),
    preview: text("preview"),
    createdAt: pgTime("created_at").notNull(),
    updatedAt: pgTime("updated_at").notNull(),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull(),
    /** Highest seq any node reserved for the chat. */
    lastSeq: bigint("last_seq", { mode: "number" }).notNull(),
    agent: text("agent").notNull(),
  },
  (t) => [index("chats_updated_idx").on(t.updatedAt)],
);

export const pgTurns = pgTable(
  "turns",
  {
    id: text("id").primaryKey(),
    chatId: text("chat_id")
      .notNull()
      .references(() => pgChats.id, { onDelete: "cascade" }),
    status: text("status", { enum: TURN_STATUSES }).notNull(),
    startedAt: pgTime("started_at").notNull(),
    endedAt: pgTime("ended_at"),
    latencyMs: bigint("latency_ms", { mode: "number" }),
    error: text("error"),
  },
  (t) => [index("turns_chat_idx").on(t.chatId), index("turns_status_idx").on(t.status)],
);

export const pgDeletedChats = pgTable("deleted_chats", {
  id: text("id").primaryKey(),
  lastSeq: bigint("last_seq", { mode: "number" }).notNull(),
});

export const pgMedia = pgTable(
  "media",
  {
    id: text("id").primaryKey(),
    chatId: text("chat_id").references(() => pgChats.id, { onDelete: "cascade" }),
    /** Relative to the writing node's `<data_dir>/media` (files are per node). */
    path: text("path").notNull(),
    mime: text("mime").notNull(),
    name: text("name").notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    sha256: text("sha256").notNull(),
    createdAt: pgTime("created_at").notNull(),
  },
  (t) => [index("media_chat_idx").on(t.chatId)],
);

/**
 * A chat's client frames as clients received them, in runs of consecutive
 * seqs (first_seq..last_seq, one frame per line: JSON never holds a raw
 * newline), written behind by the chat's writer; long values are compressed by
 * PostgreSQL itself (TOAST). Runs of two writers may overlap after a takeover
 * (the same frames: both read them from the chat's stream); readers skip seqs
 * already read. No foreign key to chats: a run may be written before its chat
 * row (both are written behind), and a deleted chat's runs are deleted with it.
 */
export const pgChatEvents = pgTable(
  "chat_events",
  {
    chatId: text("chat_id").notNull(),
    firstSeq: bigint("first_seq", { mode: "number" }).notNull(),
    lastSeq: bigint("last_seq", { mode: "number" }).notNull(),
    frames: text("frames").notNull(),
  },
  // By last_seq too: a resume asks for the runs ending at or after a seq.
  (t) => [primaryKey({ columns: [t.chatId, t.firstSeq] }), index("chat_events_last_idx").on(t.chatId, t.lastSeq)],
);
