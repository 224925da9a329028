/**
 * The node's Redis connections when `cluster_redis_url` is set: one for
 * commands and one for pub/sub (a subscribed connection runs nothing else),
 * opened at start (a gateway that cannot reach its cluster's Redis does not
 * start) and closed at shutdown. Without the option nothing here runs.
 */
import { RedisClient } from "bun";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { PostgresTimeoutError, RedisTimeoutError, settledWithin } from "./command-timeout.ts";
import { ClusterKeys } from "./keys.ts";
import { KeptOpen } from "./reopen.ts";
import { Subscriptions } from "./subscriptions.ts";

/** How long start-up waits for Redis before giving up with an error naming the option. */
const CONNECT_TIMEOUT_MS = 5000;

export interface ClusterConnection {
  readonly redis: RedisClient;
  /** Subscribed again after a reconnect. */
  readonly subscriber: Subscriptions;
  readonly keys: ClusterKeys;
  close(): void;
}

export async function connectCluster(
  config: Pick<Config, "cluster_redis_url" | "cluster_key_prefix" | "cluster_redis_max_retries" | "cluster_redis_reopen_max_ms">,
  log: Logger,
): Promise<ClusterConnection> {
  const redis = await connect(config);
  const subscribed = await connect(config).catch((e: unknown) => {
    redis.close();
    throw e;
  });
  // The next reconnect (or reopening) subscribes again.
  const subscriber = new Subscriptions(subscribed, (e) => log.error("could not subscribe again after the Redis connection came back; retried at the next reconnect", { error: String(e) }));
  const keptOpen = [
    { client: redis, role: "commands" },
    { client: subscribed, role: "subscriptions" },
  ].map(
    ({ client, role }) =>
      new KeptOpen(client, config.cluster_redis_reopen_max_ms, {
        gaveUp: (e) => log.error("gave up on a Redis connection after cluster_redis_max_retries reconnects; opening it again", { connection: role, error: String(e) }),
        reopened: () => log.warn("opened a Redis connection again", { connection: role }),
      }),
  );
  return {
    redis,
    subscriber,
    keys: new ClusterKeys(config.cluster_key_prefix),
    close: () => {
      for (const kept of keptOpen) kept.stop();
      subscriber.close();
      redis.close();
    },
  };
}

/**
 * Whether `error` came from the cluster's shared stores rather than from our own
 * code: Redis (Bun's RedisClient: a server error reply, a closed or failed
 * connection; or no answer in time) or PostgreSQL (Bun's SQL client, e.g. the
 * durable history read while the database is down; Drizzle wraps it, so its
 * `cause` is what tells).
 */
export function isSharedStoreError(error: unknown, depth = 0): boolean {
  // Redis or PostgreSQL not answering in time is their failure too (command-timeout.ts).
  if (error instanceof RedisTimeoutError || error instanceof PostgresTimeoutError) return true;
  const { code, cause } = (error ?? {}) as { code?: unknown; cause?: unknown };
  if (typeof code === "string" && (code.startsWith("ERR_REDIS") || code.startsWith("ERR_POSTGRES"))) return true;
  // A few wrappings deep at most: a cause chain may loop.
  return cause !== undefined && depth < 4 && isSharedStoreError(cause, depth + 1);
}

async function connect({ cluster_redis_url: url, cluster_redis_max_retries: maxRetries }: Pick<Config, "cluster_redis_url" | "cluster_redis_max_retries">): Promise<RedisClient> {
  const redis = new RedisClient(url, { connectionTimeout: CONNECT_TIMEOUT_MS, maxRetries });
  // The client retries a refused connection on its own for long: start-up gives it a fixed time.
  try {
    await settledWithin(redis.connect(), CONNECT_TIMEOUT_MS, (): never => {
      throw new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`);
    });
    return redis;
  } catch (e) {
    redis.close();
    // The URL may hold a password: name the option, not its value.
    throw new Error(`cluster_redis_url: cannot connect to Redis: ${(e as Error).message}`);
  }
}
