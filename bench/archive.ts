/**
 * `bun run bench/archive.ts`: the writer's CPU per event for the durable
 * history (src/cluster/archiver.ts) alone, against a real redis-server and
 * PostgreSQL: commits of COMMIT events handed to the archiver, written every
 * FLUSH events (2000 deltas/s with cluster_archive_interval_ms 500 gives 1000),
 * in rows of cluster_archive_batch_events. This process's CPU (user + system)
 * per event, median of BENCH_ROUNDS runs; the cluster bench's writer CPU holds
 * it among everything else, too noisy to see it in. Every process started here
 * is ended here, by pid.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisClient } from "bun";
import { Archiver } from "../src/cluster/archiver.ts";
import { ClusterEventLog, type LoggedEvent } from "../src/cluster/event-log.ts";
import { ClusterKeys } from "../src/cluster/keys.ts";
import { openDatabase } from "../src/store/db.ts";
import { SharedMetadata } from "../src/store/shared-metadata.ts";
import { runCleanups } from "../test/cleanup.ts";
import { startPostgres } from "../test/cluster/postgres-server.ts";
import { launchRedis } from "../test/cluster/redis-server.ts";
import { median } from "./proc.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const EVENTS = 100_000;
const COMMIT = 4;
const FLUSH = 1000;
const BATCH = 1000;

const dir = mkdtempSync(join(tmpdir(), "agentgate-archive-bench-"));
const redis = await launchRedis(dir);
const pg = await startPostgres();
try {
  const client = new RedisClient(redis.url);
  await client.connect();
  const shared = await SharedMetadata.open(pg.url, { failed: () => {}, recovered: () => {}, overflowed: () => {} }, { maxPending: 1000, local: openDatabase(join(dir, "local.db"), 1000), timeoutMs: 60_000 });
  const log = new ClusterEventLog(client, new ClusterKeys("bench:"), 10_000, 1_000_000);
  const perEvent: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const chatId = `chat-${round}`;
    const archiver = new Archiver(log, shared.archive, { intervalMs: 3_600_000, batchEvents: BATCH, maxQueuedEvents: 100_000, commandTimeoutMs: 60_000 }, () => {});
    // Frames as the hub makes them, built before the clock starts.
    const events: LoggedEvent[] = Array.from({ length: EVENTS }, (_, i) => {
      const frame = JSON.stringify({ event: "delta", chat_id: chatId, seq: i + 1, turn_id: "t-1", text: "lorem ipsum " });
      return { seq: i + 1, stored: frame, frame };
    });
    const before = process.cpuUsage();
    for (let i = 0; i < EVENTS; i += COMMIT) {
      archiver.appended(chatId, events.slice(i, i + COMMIT));
      if ((i + COMMIT) % FLUSH === 0) await archiver.flush();
    }
    await archiver.close();
    const used = process.cpuUsage(before);
    perEvent.push((used.user + used.system) / EVENTS);
  }
  await shared.close(1000);
  client.close();
  console.log(`archive: ${EVENTS} events in commits of ${COMMIT}, written every ${FLUSH} in rows of ${BATCH}: writer CPU ${median(perEvent).toFixed(2)} µs/event (runs: ${perEvent.map((c) => c.toFixed(2)).join(", ")})`);
} finally {
  await pg.stop();
  await redis.stop();
  await runCleanups();
  rmSync(dir, { recursive: true, force: true });
}
