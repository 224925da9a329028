/** The clustered hub storage (fenced appends of commit batches) on a real redis-server, with a real local storage under it. */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import { join } from "node:path";
import { ChatStorage } from "../../src/chat/storage.ts";
import { ClusterStorage } from "../../src/cluster/cluster-storage.ts";
import { ClusterEventLog } from "../../src/cluster/event-log.ts";
import { ClusterKeys } from "../../src/cluster/keys.ts";
import { ChatLeases } from "../../src/cluster/lease.ts";
import { createLogger } from "../../src/log.ts";
import { ChatStore } from "../../src/store/chat-store.ts";
import { CommitLog } from "../../src/store/commit-log.ts";
import { openDatabase } from "../../src/store/db.ts";
import { TranscriptWriter, transcriptPath } from "../../src/store/transcript.ts";
import { onCleanup, tempDir } from "../helpers.ts";
import { startRedis } from "./redis-server.ts";

const keys = new ClusterKeys("test:");

function localStorage(): ChatStorage {
  const dir = tempDir("agentgate-cluster-storage-");
  const log = createLogger("error", "text", () => {});
  const db = openDatabase(join(dir, "agentgate.db"), 1000);
  onCleanup(() => db.$client.close());
  const transcripts = join(dir, "transcripts");
  return new ChatStorage({
    store: new ChatStore(db, "echo", () => {}),
    log: new CommitLog({ dir: join(dir, "commit-log"), segmentBytes: 1 << 20 }),
    transcript: new TranscriptWriter({ dir: transcripts, flushMs: 50, maxLineBytes: 1 << 20, maxOpenFiles: 16, retryMs: 50, log }),
    transcriptFile: (chatId) => transcriptPath(transcripts, chatId),
    fsync: "never",
    retireBytes: 1 << 20,
  });
}

test("a chat whose batch is refused drops its events queued behind it: renumbered after the disown, the next writer's turn here appends whole", async () => {
  const redis = new RedisClient((await startRedis()).url);
  await redis.connect();
  onCleanup(() => redis.close());
  const log = new ClusterEventLog(redis, keys, 10_000);
  const other = new ChatLeases(redis, keys, "node-b", 10_000, 1000);
  const storage: ClusterStorage = new ClusterStorage(
    localStorage(),
    new ChatLeases(redis, keys, "node-a", 10_000, 1000),
    log,
    { warn: () => {}, takeOver: (chatId) => storage.claim(chatId, async () => {}) },
    1000,
  );
  onCleanup(() => storage.close());
  const stage = (seq: number, text: string) => {
    const line = JSON.stringify({ event: "delta", chat_id: "c1", seq, text });
    storage.stage("c1", line, seq, line);
  };
  stage(1, "a");
  stage(2, "a");
  expect((await storage.commit()).refused.size).toBe(0);
  // Another node takes the chat over (the lease moved): this node's next batch is fenced.
  await redis.del(keys.owner("c1"));
  const theirs = (await other.acquire("c1"))!;
  stage(3, "refused");
  stage(4, "refused");
  const refusing = storage.commit();
  // Queued while that append is in flight: the turn went on.
  stage(5, "queued");
  stage(6, "queued");
  expect((await refusing).refused.has("c1")).toBe(true);
  // The hub numbers again from its last revealed seq; the other node left, so this one writes again.
  await other.release(theirs);
  stage(3, "again");
  stage(4, "again");
  const outcome = await storage.commit();
  expect(outcome.refused.size + outcome.failed.size).toBe(0);
  const events = await log.after("c1", 0, 100);
  expect(events.map((e) => [e.seq, (JSON.parse(e.stored) as { text: string }).text])).toEqual([[1, "a"], [2, "a"], [3, "again"], [4, "again"]]);
  expect(storage.stagedBytes()).toBe(0);
});
