/**
 * A Lua script run atomically in Redis: by its SHA-1 (EVALSHA) so the source
 * crosses the wire once per connection's script cache, falling back to EVAL
 * when the server does not know it yet (first use, or after a restart or
 * SCRIPT FLUSH), which also caches it.
 */
import type { RedisClient } from "bun";

/** The error a fenced script raises when the caller no longer holds the chat's lease. */
const FENCED = "FENCED";

export class FencedError extends Error {
  constructor(chatId: string) {
    super(`chat ${chatId}: this node no longer holds the lease; the write was refused`);
  }
}

/** An append whose first seq does not continue past the last seq the chat's stream holds. */
export class SeqBehindError extends Error {
  constructor(
    chatId: string,
    readonly lastSeq: number,
  ) {
    super(`chat ${chatId}: the stream already holds seq ${lastSeq}; the batch was refused`);
  }
}

/** Lua prologue of every owner write: KEYS[1] is the lease key, ARGV[1] the caller's fence token. */
export const FENCE_CHECK = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('${FENCED}') end\n`;

export class LuaScript {
  readonly #sha: string;

  constructor(private readonly source: string) {
    this.#sha = new Bun.CryptoHasher("sha1").update(source).digest("hex");
  }

  async run(redis: RedisClient, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await redis.send("EVALSHA", [this.#sha, ...tail]);
    } catch (e) {
      if (!String((e as Error).message).includes("NOSCRIPT")) throw e;
      return redis.send("EVAL", [this.source, ...tail]);
    }
  }
}

/** Whether a Redis error is the fence refusing a stale owner. */
export function isFenced(error: unknown): boolean {
  return error instanceof Error && error.message.includes(FENCED);
}
