/**
 * A bound on how long a writer waits for Redis. A redis-server that stops
 * answering without closing the connection (SIGSTOP, a stalled host) is not
 * noticed by Bun's client: its commands just wait. The command itself is not
 * cancelled (Redis may still run it once it answers again, in order with the
 * connection's other commands), so a caller that times out must treat the
 * outcome as unknown: an append as failed (retried idempotently), a renewal as
 * a lease possibly lost.
 */

export class RedisTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`Redis did not answer ${what} within ${ms} ms (cluster_redis_command_timeout_ms)`);
  }
}

/** PostgreSQL did not answer within store_postgres_timeout_ms: a stalled database fails the read or write, as a closed one does. */
export class PostgresTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`PostgreSQL did not answer ${what} within ${ms} ms (store_postgres_timeout_ms)`);
  }
}

/**
 * `promise`'s outcome, or `late()`'s once `ms` have passed first (a throw in
 * `late` rejects). The promise is not cancelled; its own rejection is still
 * observed when it loses the race. Every wait the cluster bounds goes through it.
 */
export function settledWithin<T, L>(promise: Promise<T>, ms: number, late: () => L): Promise<T | L> {
  let timer: Timer | undefined;
  const timedOut = new Promise<L>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(late());
      } catch (e) {
        reject(e);
      }
    }, ms);
  });
  promise.catch(() => {});
  return Promise.race([promise, timedOut]).finally(() => clearTimeout(timer));
}

/** `promise`, or a PostgresTimeoutError after `ms` (the query is not cancelled). */
export function postgresWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return settledWithin(promise, ms, (): never => {
    throw new PostgresTimeoutError(what, ms);
  });
}

/** `promise`, or a RedisTimeoutError after `ms`. */
export function answeredWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return settledWithin(promise, ms, (): never => {
    throw new RedisTimeoutError(what, ms);
  });
}
