/**
 * A cluster's durable chat history on PostgreSQL (`chat_events`, schema-pg.ts):
 * runs of consecutive client frames, written behind by each chat's writer
 * (archiver.ts) and read by a node resuming a chat from before what its Redis
 * stream keeps (history.ts).
 */
import { and, asc, eq, gte, lte, sql } from "drizzle-orm";
import { postgresWithin } from "../cluster/command-timeout.ts";
import { pgChatEvents, pgDeletedChats } from "./schema-pg.ts";
import type { PgDb } from "./shared-metadata.ts";

/** One row: a chat's frames for seqs firstSeq..lastSeq, one per line. */
export type ArchivedRun = typeof pgChatEvents.$inferInsert;

/** Frames of consecutive seqs from `first` (none: the archive holds nothing in the range asked). */
export interface ArchivedFrames {
  first: number;
  frames: string[];
}

/** Rows per read: with runs of at most cluster_archive_batch_events, bounds one read's memory. */
const READ_ROWS = 64;
/** Rows per INSERT: well under PostgreSQL's 65535 parameters a statement (4 a row). */
const WRITE_ROWS = 1000;

export class EventArchive {
  constructor(
    private readonly db: PgDb,
    /** store_postgres_timeout_ms: each statement's bound (a stalled database fails it; the statement itself is not cancelled). */
    private readonly timeoutMs: number,
  ) {}

  /**
   * Writes runs, one statement per WRITE_ROWS (no transaction around them: a
   * run is whole or absent, and a retry writes it again). A run starting where
   * a stored one does replaces it only if it reaches further (a takeover's
   * writer may archive again what the dead one had, and more). Of a deleted
   * chat only the seqs past its deletion floor are written (a run read from
   * the stream before the delete may land after it, and more was appended since).
   */
  async write(runs: ArchivedRun[]): Promise<void> {
    for (let i = 0; i < runs.length; i += WRITE_ROWS) {
      const rows = runs.slice(i, i + WRITE_ROWS).map((r) => sql`(${r.chatId}, ${r.firstSeq}::bigint, ${r.lastSeq}::bigint, ${r.frames})`);
      // Frames are JSON, one per line (never a raw newline inside): a run cut at the floor keeps its lines past it.
      await postgresWithin(this.db.execute(sql`insert into ${pgChatEvents} (chat_id, first_seq, last_seq, frames)
        select r.chat_id, greatest(r.first_seq, coalesce(d.last_seq, 0) + 1), r.last_seq,
          case when coalesce(d.last_seq, 0) < r.first_seq then r.frames
          else array_to_string((string_to_array(r.frames, E'\n'))[(d.last_seq + 2 - r.first_seq)::int:], E'\n') end
        from (values ${sql.join(rows, sql`, `)}) as r (chat_id, first_seq, last_seq, frames)
        left join ${pgDeletedChats} d on d.id = r.chat_id
        where r.last_seq > coalesce(d.last_seq, 0)
        on conflict (chat_id, first_seq) do update set last_seq = excluded.last_seq, frames = excluded.frames
        where excluded.last_seq > ${pgChatEvents}.last_seq`), this.timeoutMs, "a durable history write");
    }
  }

  /**
   * The chat's frames from the first archived seq at or after `from`, through
   * `through` at most, consecutive (a hole in the archive ends the answer);
   * about `maxEvents` at most (whole rows).
   */
  async read(chatId: string, from: number, through: number, maxEvents: number): Promise<ArchivedFrames> {
    const rows = await postgresWithin(this.db
      .select({ firstSeq: pgChatEvents.firstSeq, lastSeq: pgChatEvents.lastSeq, frames: pgChatEvents.frames })
      .from(pgChatEvents)
      .where(and(eq(pgChatEvents.chatId, chatId), gte(pgChatEvents.lastSeq, from), lte(pgChatEvents.firstSeq, through)))
      .orderBy(asc(pgChatEvents.firstSeq))
      .limit(READ_ROWS), this.timeoutMs, "a durable history read");
    const frames: string[] = [];
    let first = from;
    let next = from;
    for (const row of rows) {
      if (row.lastSeq < next) continue;
      if (row.firstSeq > next) {
        if (frames.length > 0) break;
        first = next = row.firstSeq;
      }
      const lines = row.frames.split("\n");
      const end = Math.min(row.lastSeq, through);
      frames.push(...lines.slice(next - row.firstSeq, end - row.firstSeq + 1));
      next = end + 1;
      if (next > through || frames.length >= maxEvents) break;
    }
    return { first, frames };
  }
}
