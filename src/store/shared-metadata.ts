/**
 * A cluster's metadata of record on PostgreSQL (`store_postgres_url`): chat
 * rows, turn rows and media rows, read by the sessions API of every node.
 *
 * Each node keeps its own SQLite as its synchronous hot store; what changes
 * there (through ChatStore and MediaLibrary) is queued here and written behind
 * in one transaction per batch, one batch in flight, never on the per-event
 * path. A batch that fails (Postgres down) is kept and retried, so streaming
 * never waits for Postgres and the rows catch up when it returns. Every write
 * is idempotent (insert-or-ignore, updates by key) because a batch may be
 * retried after it committed but before the answer arrived. A write Postgres
 * refuses for good (a constraint: the chat was deleted on another node
 * meanwhile) is dropped alone, so it cannot hold the queue back forever.
 *
 * The queue is bounded (`store_postgres_max_pending`): a longer outage drops
 * it and, once Postgres answers again, copies this node's SQLite rows (chats,
 * turns, media, deletions) instead, which hold everything the queue did.
 *
 * Renames and deletes through the sessions API are written at once (awaited).
 */
import { SQL } from "bun";
import { and, desc, eq, getTableColumns, inArray, max, notInArray, type SQL as Sql, sql } from "drizzle-orm";
import { type BunSQLDatabase, drizzle } from "drizzle-orm/bun-sql";
import { type Db, embeddedMigrations } from "./db.ts";
import { pgMigrations } from "./migrations.gen.ts";
import { chats, deletedChats, media, type TurnRowStatus, turns } from "./schema.ts";
import { EventArchive } from "./event-archive.ts";
import { pgChatEvents, pgChats, pgDeletedChats, pgMedia, pgTurns } from "./schema-pg.ts";

export type SharedChatRow = typeof pgChats.$inferSelect;
export type SharedMediaRow = typeof pgMedia.$inferSelect;

export type PgDb = BunSQLDatabase<Record<string, never>> & { $client: SQL };
type Tx = Parameters<Parameters<PgDb["transaction"]>[0]>[0];
type Write = (tx: Tx) => Promise<unknown>;

/** Writes per transaction: a backlog after an outage goes in batches of this many. */
const BATCH_WRITES = 500;
/** Rows per write when copying the local SQLite after the queue overflowed. */
const COPY_ROWS = 500;
/** A failed batch is tried again this much later. */
const RETRY_MS = 1000;
/** Advisory lock held while migrating, so nodes starting together migrate once, one after the other. */
const MIGRATION_LOCK = 0x61677465;
/** SQLSTATE class 23: integrity constraint violations, which no retry will cure. */
const CONSTRAINT_CLASS = "23";

export interface SharedMetadataEvents {
  /** A batch failed and will be retried (or a write was refused for good and dropped: `dropped`). */
  failed(error: unknown, dropped: boolean): void;
  /** Writes go through again after failures. */
  recovered(): void;
  /** The queue was full: it is dropped, and the local rows are copied once Postgres answers. */
  overflowed(): void;
}

export interface SharedMetadataOptions {
  /** Most writes queued (store_postgres_max_pending). */
  maxPending: number;
  /** This node's SQLite, copied from after an overflow. */
  local: Db;
  /** store_postgres_timeout_ms: bounds the durable history's reads and writes. */
  timeoutMs: number;
}

export class SharedMetadata {
  #queue: Write[] = [];
  #draining: Promise<void> | undefined;
  #retry: Timer | undefined;
  #failing = false;
  /** The queue overflowed: the local rows are to be copied (the queue stays empty until then). */
  #copyNeeded = false;
  /** The chats' durable history, on the same database (written by the chats' writers, not through this queue). */
  readonly archive: EventArchive;

  private constructor(
    private readonly db: PgDb,
    private readonly events: SharedMetadataEvents,
    private readonly options: SharedMetadataOptions,
  ) {
    this.archive = new EventArchive(db, options.timeoutMs);
  }

  /** Connects and applies the embedded migrations (an empty database gets every table). */
  static async open(url: string, events: SharedMetadataEvents, options: SharedMetadataOptions): Promise<SharedMetadata> {
    const client = new SQL(url);
    try {
      await migrate(client);
    } catch (e) {
      await client.close();
      // The URL may hold a password: name the option, not its value.
      throw new Error(`store_postgres_url: cannot prepare PostgreSQL: ${(e as Error).message}`);
    }
    return new SharedMetadata(drizzle({ client }) as PgDb, events, options);
  }

  /** Writes still queued (retried while Postgres is away). */
  get pending(): number {
    return this.#queue.length;
  }

  // ---- written behind ----

  chatCreated(row: SharedChatRow): void {
    this.#later((tx) => tx.insert(pgChats).values(row).onConflictDoNothing());
  }

  seqReserved(chatId: string, through: number): void {
    this.#later((tx) => tx.update(pgChats).set({ lastSeq: sql`greatest(${pgChats.lastSeq}, ${through})` }).where(eq(pgChats.id, chatId)));
  }

  userMessage(chatId: string, at: Date, preview: string): void {
    this.#later((tx) => tx.update(pgChats).set({ updatedAt: at, preview: sql`coalesce(${pgChats.preview}, ${preview})` }).where(eq(pgChats.id, chatId)));
  }

  metadataSet(chatId: string, metadata: Record<string, unknown>, at: Date): void {
    this.#later((tx) => tx.update(pgChats).set({ metadata, updatedAt: at }).where(eq(pgChats.id, chatId)));
  }

  titleSet(chatId: string, title: string, at: Date): void {
    this.#later((tx) => tx.update(pgChats).set({ title, updatedAt: at }).where(eq(pgChats.id, chatId)));
  }

  chatDeleted(chatId: string, seqFloor: number): void {
    this.#later((tx) => deleteChat(tx, chatId, seqFloor));
  }

  turnStarted(turnId: string, chatId: string, startedAt: Date): void {
    this.#later((tx) => tx.insert(pgTurns).values({ id: turnId, chatId, status: "running", startedAt }).onConflictDoNothing());
  }

  turnEnded(turnId: string, status: TurnRowStatus, endedAt: Date, latencyMs: number, error: string | null): void {
    this.#later((tx) => tx.update(pgTurns).set({ status, endedAt, latencyMs, error }).where(eq(pgTurns.id, turnId)));
  }

  mediaAdded(rows: SharedMediaRow[]): void {
    this.#later((tx) => tx.insert(pgMedia).values(rows).onConflictDoNothing());
  }

  mediaClaimed(ids: string[], chatId: string): void {
    this.#later((tx) => tx.update(pgMedia).set({ chatId }).where(inArray(pgMedia.id, ids)));
  }

  mediaRemoved(ids: string[]): void {
    this.#later((tx) => tx.delete(pgMedia).where(inArray(pgMedia.id, ids)));
  }

  // ---- read and written at once (the sessions API) ----

  /** Newest first. */
  list(): Promise<SharedChatRow[]> {
    return this.db.select().from(pgChats).orderBy(desc(pgChats.updatedAt));
  }

  async get(chatId: string): Promise<SharedChatRow | undefined> {
    return (await this.db.select().from(pgChats).where(eq(pgChats.id, chatId)))[0];
  }

  async rename(chatId: string, title: string): Promise<void> {
    await this.db.update(pgChats).set({ title, updatedAt: new Date() }).where(eq(pgChats.id, chatId));
  }

  /**
   * Removes the chat (its turn and media rows cascade, its archived events go
   * too), keeping its highest seq as deleted_chats does locally: at least
   * `numberedSeq` (the last seq the chat's Redis stream numbered), so an archive
   * write racing the delete brings none of it back (event-archive.ts).
   */
  async delete(chatId: string, numberedSeq = 0): Promise<void> {
    await this.db.transaction(async (tx) => {
      const [row] = await tx.select({ lastSeq: pgChats.lastSeq }).from(pgChats).where(eq(pgChats.id, chatId));
      // The chat row's seq is written behind and may trail what is archived already.
      const [archived] = await tx.select({ lastSeq: max(pgChatEvents.lastSeq) }).from(pgChatEvents).where(eq(pgChatEvents.chatId, chatId));
      await deleteChat(tx, chatId, Math.max(row?.lastSeq ?? 0, Number(archived?.lastSeq ?? 0), numberedSeq));
    });
  }

  /** Everything queued written (or the wait over): shutdown. */
  async flush(timeoutMs: number): Promise<void> {
    await Promise.race([this.#drain(), Bun.sleep(timeoutMs)]);
  }

  async close(timeoutMs: number): Promise<void> {
    await this.flush(timeoutMs);
    clearTimeout(this.#retry);
    await this.db.$client.close({ timeout: 1 });
  }

  #later(write: Write): void {
    if (this.#copyNeeded) return;
    if (this.#queue.length >= this.options.maxPending) {
      this.#queue = [];
      this.#copyNeeded = true;
      this.events.overflowed();
      return;
    }
    if (this.#queue.push(write) === 1 && this.#retry === undefined) setImmediate(() => void this.#drain());
  }

  #drain(): Promise<void> {
    return (this.#draining ??= this.#writeQueued().finally(() => (this.#draining = undefined)));
  }

  async #writeQueued(): Promise<void> {
    while (this.#queue.length > 0 || this.#copyNeeded) {
      if (this.#queue.length === 0) this.#queueLocalCopy();
      const batch = this.#queue.slice(0, BATCH_WRITES);
      try {
        await this.db.transaction(async (tx) => {
          for (const write of batch) await write(tx);
        });
      } catch (e) {
        if (!isConstraint(e)) return this.#retryLater(e);
        // One write Postgres refuses for good: the others go one by one, the refused one is dropped.
        const fault = await this.#writeOneByOne(batch);
        if (fault !== undefined) return this.#retryLater(fault);
      }
      this.#queue.splice(0, batch.length);
      if (this.#failing) {
        this.#failing = false;
        this.events.recovered();
      }
    }
  }

  /** A fault other than a constraint (the connection went) stops it: the whole batch is retried. */
  async #writeOneByOne(batch: Write[]): Promise<unknown> {
    for (const write of batch) {
      try {
        await this.db.transaction(write);
      } catch (e) {
        if (!isConstraint(e)) return e;
        this.events.failed(e, true);
      }
    }
    return undefined;
  }

  #retryLater(error: unknown): void {
    this.#failing = true;
    this.events.failed(error, false);
    this.#retry ??= setTimeout(() => {
      this.#retry = undefined;
      void this.#drain();
    }, RETRY_MS);
  }

  /**
   * After an overflow: every local row as idempotent upserts (the local SQLite
   * holds all the dropped writes did). A chat Postgres has as deleted at or past
   * its local seqs is not brought back; a local deletion is applied.
   */
  #queueLocalCopy(): void {
    this.#copyNeeded = false;
    const { local } = this.options;
    const chatRows = local.select().from(chats).all();
    const liveIds = chatRows.map((c) => c.id);
    const gone = local.select().from(deletedChats).where(liveIds.length > 0 ? notInArray(deletedChats.id, liveIds) : undefined).all();
    for (const row of gone) this.#queue.push((tx) => deleteChat(tx, row.id, row.lastSeq));
    for (const rows of chunks(chatRows)) {
      this.#queue.push(async (tx) => {
        await tx
          .insert(pgChats)
          .values(rows)
          .onConflictDoUpdate({
            target: pgChats.id,
            set: { title: sql`excluded.title`, preview: sql`coalesce(${pgChats.preview}, excluded.preview)`, updatedAt: sql`greatest(${pgChats.updatedAt}, excluded.updated_at)`, metadata: sql`excluded.metadata`, lastSeq: sql`greatest(${pgChats.lastSeq}, excluded.last_seq)` },
          });
        // A chat deleted elsewhere while this node could not hear of it stays deleted.
        const deletedSince = sql`exists (select 1 from ${pgDeletedChats} where ${pgDeletedChats.id} = ${pgChats.id} and ${pgDeletedChats.lastSeq} >= ${pgChats.lastSeq})`;
        await tx.delete(pgChats).where(and(inArray(pgChats.id, rows.map((r) => r.id)), deletedSince));
      });
    }
    for (const rows of chunks(local.select().from(turns).all())) {
      this.#queue.push(async (tx) => {
        const kept = await ofPresentChats(tx, rows);
        if (kept.length > 0) await tx.insert(pgTurns).values(kept).onConflictDoUpdate({ target: pgTurns.id, set: excluded(pgTurns, ["status", "endedAt", "latencyMs", "error"]) });
      });
    }
    for (const rows of chunks(local.select().from(media).all())) {
      this.#queue.push(async (tx) => {
        const kept = await ofPresentChats(tx, rows);
        if (kept.length > 0) await tx.insert(pgMedia).values(kept).onConflictDoUpdate({ target: pgMedia.id, set: excluded(pgMedia, ["chatId"]) });
      });
    }
  }
}

/** The rows whose chat Postgres has (or that belong to none): a copied row never breaks the foreign key. */
async function ofPresentChats<R extends { chatId: string | null }>(tx: Tx, rows: R[]): Promise<R[]> {
  const ids = [...new Set(rows.flatMap((r) => (r.chatId === null ? [] : [r.chatId])))];
  const present = new Set(ids.length === 0 ? [] : (await tx.select({ id: pgChats.id }).from(pgChats).where(inArray(pgChats.id, ids))).map((r) => r.id));
  return rows.filter((r) => r.chatId === null || present.has(r.chatId));
}

/** `set` of an upsert taking these columns from the row offered. */
function excluded<T extends typeof pgTurns | typeof pgMedia>(table: T, keys: (keyof T["$inferSelect"] & string)[]): Record<string, Sql> {
  const columns = getTableColumns(table) as Record<string, { name: string }>;
  return Object.fromEntries(keys.map((k) => [k, sql.raw(`excluded.${columns[k]!.name}`)]));
}

function chunks<T>(rows: T[]): T[][] {
  return Array.from({ length: Math.ceil(rows.length / COPY_ROWS) }, (_, i) => rows.slice(i * COPY_ROWS, (i + 1) * COPY_ROWS));
}

async function deleteChat(tx: Tx, chatId: string, seqFloor: number): Promise<void> {
  await tx
    .insert(pgDeletedChats)
    .values({ id: chatId, lastSeq: seqFloor })
    .onConflictDoUpdate({ target: pgDeletedChats.id, set: { lastSeq: sql`greatest(${pgDeletedChats.lastSeq}, excluded.last_seq)` } });
  await tx.delete(pgChats).where(eq(pgChats.id, chatId));
  await tx.delete(pgChatEvents).where(eq(pgChatEvents.chatId, chatId));
}

function isConstraint(e: unknown): boolean {
  const errno = (e as { errno?: unknown }).errno;
  return typeof errno === "string" && errno.startsWith(CONSTRAINT_CLASS);
}

/** drizzle's migrator on the embedded SQL, on one reserved connection holding the migration lock. */
async function migrate(client: SQL): Promise<void> {
  const connection = await client.reserve();
  try {
    await connection`select pg_advisory_lock(${MIGRATION_LOCK})`;
    const db = drizzle({ client: connection as unknown as SQL });
    // `dialect` and `session` are internal to drizzle-orm (pinned exactly in package.json), as in db.ts.
    const internals = db as unknown as { dialect: { migrate(m: unknown, s: unknown, c: object): Promise<void> }; session: unknown };
    await internals.dialect.migrate(embeddedMigrations(pgMigrations), internals.session, { migrationsFolder: "(embedded)" });
    await connection`select pg_advisory_unlock(${MIGRATION_LOCK})`;
  } finally {
    connection.release();
  }
}
