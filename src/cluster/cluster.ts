/**
 * The node's Redis connections when `cluster_redis_url` is set: one for
 * commands and one for pub/sub (a subscribed connection runs nothing else),
 * opened at start (a gateway that cannot reach its cluster's Redis does not
 * start) and closed at shutdown. Without the option nothing here runs.
 */
import { RedisClient } from "bun";
import type { Config } from "../config.ts";
import { ClusterKeys } from "./keys.ts";
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
  config: Pick<Config, "cluster_redis_url" | "cluster_key_prefix">,
  /** Told when subscribing again after a reconnect failed (the next reconnect tries again). */
  resubscribeFailed: (error: unknown) => void,
): Promise<ClusterConnection> {
  const redis = await connect(config.cluster_redis_url);
  const subscribed = await connect(config.cluster_redis_url).catch((e: unknown) => {
    redis.close();
    throw e;
  });
  const subscriber = new Subscriptions(subscribed, resubscribeFailed);
  return {
    redis,
    subscriber,
    keys: new ClusterKeys(config.cluster_key_prefix),
    close: () => {
      subscriber.close();
      redis.close();
    },
  };
}

/** Whether `error` came from Redis (Bun's RedisClient: a server error reply, a closed or failed connection) rather than from our own code. */
export function isRedisError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && code.startsWith("ERR_REDIS");
}

async function connect(url: string): Promise<RedisClient> {
  const redis = new RedisClient(url, { connectionTimeout: CONNECT_TIMEOUT_MS });
  // The client retries a refused connection on its own for long: start-up gives it a fixed time.
  let timer: Timer | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
  });
  try {
    await Promise.race([redis.connect(), timedOut]);
    return redis;
  } catch (e) {
    redis.close();
    // The URL may hold a password: name the option, not its value.
    throw new Error(`cluster_redis_url: cannot connect to Redis: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}
