/**
 * What /ready checks: the store answers and every embedded migration is
 * applied, the listeners are bound (and not shutting down), and every configured
 * agent can take a turn (ws agents connected, stdio programs found).
 */
import type { AgentRegistry } from "./agents/registry.ts";
import type { ReadinessCheck } from "./http/health.ts";
import type { Db } from "./store/db.ts";
import { sqliteMigrations } from "./store/migrations.gen.ts";

export interface ReadinessDeps {
  db: Db;
  agents: AgentRegistry;
  /** True between the listeners binding and shutdown starting. */
  serving: () => boolean;
}

const problem = (e: unknown) => (e instanceof Error ? e.message : String(e));

function migrationsApplied(db: Db): string | undefined {
  try {
    const row = db.$client.query("SELECT count(*) AS n FROM __drizzle_migrations").get() as { n: number };
    return row.n >= sqliteMigrations.journal.entries.length ? undefined : `${row.n} of ${sqliteMigrations.journal.entries.length} migrations applied`;
  } catch (e) {
    return `store: ${problem(e)}`;
  }
}

export function readinessChecks({ db, agents, serving }: ReadinessDeps): Record<string, ReadinessCheck> {
  return {
    store: () => {
      try {
        db.$client.query("SELECT 1").get();
        return undefined;
      } catch (e) {
        return problem(e);
      }
    },
    migrations: () => migrationsApplied(db),
    listeners: () => (serving() ? undefined : "not serving (starting or shutting down)"),
    agents: () => agents.notReady(),
  };
}
