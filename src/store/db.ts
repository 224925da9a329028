/**
 * Opens `<data_dir>/agentgate.db` (bun:sqlite, WAL) and applies the embedded
 * migrations. The same code runs under bun test, from source and in the binary.
 */
import { createHash } from "node:crypto";
import { Database } from "bun:sqlite";
import { type BunSQLiteDatabase, drizzle } from "drizzle-orm/bun-sqlite";
import type { MigrationMeta } from "drizzle-orm/migrator";
import { sqliteMigrations } from "./migrations.gen.ts";
import * as schema from "./schema.ts";

export type Db = BunSQLiteDatabase<typeof schema> & { $client: Database };

/** drizzle's own migrator works on these; its file reader is bypassed because the SQL is embedded. Both dialects. */
export function embeddedMigrations(set: { journal: { entries: { when: number; breakpoints: boolean }[] }; sql: string[] }): MigrationMeta[] {
  return set.journal.entries.map((entry, i) => {
    const sql = set.sql[i]!;
    return {
      sql: sql.split("--> statement-breakpoint"),
      bps: entry.breakpoints,
      folderMillis: entry.when,
      hash: createHash("sha256").update(sql).digest("hex"),
    };
  });
}

export function openDatabase(file: string, busyTimeoutMs: number): Db {
  const sqlite = new Database(file, { create: true, strict: true });
  // synchronous before journal_mode: a new database's switch to WAL is written under the level it runs
  // with (one fsync fewer than under the default FULL; start-up time).
  sqlite.exec("PRAGMA synchronous = NORMAL");
  sqlite.exec("PRAGMA journal_mode = WAL");
  sqlite.exec(`PRAGMA busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
  sqlite.exec("PRAGMA foreign_keys = ON");
  const db = drizzle({ client: sqlite, schema }) as Db;
  // `dialect` and `session` are internal to drizzle-orm (pinned exactly in package.json);
  // this is what drizzle-orm/bun-sqlite/migrator does after reading files from disk.
  const internals = db as unknown as { dialect: { migrate(m: MigrationMeta[], s: unknown, c: object): void }; session: unknown };
  internals.dialect.migrate(embeddedMigrations(sqliteMigrations), internals.session, { migrationsFolder: "(embedded)" });
  return db;
}
