/**
 * One writer per chat: a lease in Redis with fencing.
 *
 * Acquiring bumps the chat's epoch (INCR, never reset) and sets the lease key
 * to `<epoch>:<node_id>` only if nobody holds it (NX semantics, with a PX TTL),
 * in one script. Renewing and releasing compare the key with the holder's token
 * first. Every owner write is a script that starts with the same comparison
 * (FENCE_CHECK), so a node that paused past its TTL (GC, SIGSTOP, a partition)
 * and resumes believing it still owns the chat has its writes refused: the key
 * is gone or holds a newer epoch's token.
 */
import type { RedisClient } from "bun";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { answeredWithin } from "./command-timeout.ts";
import type { ClusterKeys } from "./keys.ts";
import { FENCE_CHECK, isFenced, LuaScript } from "./lua.ts";

/** Proof of ownership: what every fenced write presents. */
export interface Fence {
  readonly chatId: string;
  readonly epoch: number;
  /** The lease key's value while this node holds it: `<epoch>:<node_id>`. */
  readonly token: string;
}

/**
 * KEYS: lease, epoch. ARGV: node id, ttl ms. Returns the new epoch, or 0 while
 * another node holds the lease. A node asking again for a lease it holds gets
 * it back, renewed, with its epoch (it may have lost track after a Redis error).
 */
const ACQUIRE = new LuaScript(`local held = redis.call('GET', KEYS[1])
if held then
  local epoch, node = string.match(held, '^(%d+):(.*)$')
  if node ~= ARGV[1] then return 0 end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(epoch)
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], epoch .. ':' .. ARGV[1], 'PX', ARGV[2])
return epoch`);

/** KEYS: lease. ARGV: token, ttl ms. */
const RENEW = new LuaScript(`${FENCE_CHECK}return redis.call('PEXPIRE', KEYS[1], ARGV[2])`);

/** KEYS: lease. ARGV: token. */
const RELEASE = new LuaScript(`${FENCE_CHECK}return redis.call('DEL', KEYS[1])`);

/** A node id unique to this process: a restarted gateway never inherits its previous life's leases. */
export function newNodeId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/**
 * Acquiring, releasing and asking who holds a lease fail after
 * `commandTimeoutMs` when Redis does not answer (a stalled server keeps the
 * connection open): a claim or a writer lookup is then answered as a Redis
 * failure instead of waiting forever. An acquire that ran after all holds the
 * lease until its TTL, and this node asking again gets it back. Renewals are
 * bounded by their caller (cluster-storage.ts), which treats a late one apart.
 */
export class ChatLeases {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ClusterKeys,
    readonly nodeId: string,
    readonly ttlMs: number,
    /** cluster_redis_command_timeout_ms */
    private readonly commandTimeoutMs: number,
  ) {}

  /** The lease, or undefined while another node holds it. */
  async acquire(chatId: string): Promise<Fence | undefined> {
    const acquired = ACQUIRE.run(this.redis, [this.keys.owner(chatId), this.keys.epoch(chatId)], [this.nodeId, String(this.ttlMs)]);
    const epoch = Number(await answeredWithin(acquired, this.commandTimeoutMs, "a lease claim"));
    return epoch === 0 ? undefined : { chatId, epoch, token: `${epoch}:${this.nodeId}` };
  }

  /** Extends the lease by a full TTL; false (never throws for it) when it was lost. */
  async renew(fence: Fence): Promise<boolean> {
    return this.#holderOnly(RENEW, fence, [String(this.ttlMs)]);
  }

  /** Gives the lease up so another node may take the chat at once; false when it was already lost. */
  async release(fence: Fence): Promise<boolean> {
    return answeredWithin(this.#holderOnly(RELEASE, fence, []), this.commandTimeoutMs, "a lease release");
  }

  /** Who holds the chat now, if anyone. */
  async holder(chatId: string): Promise<{ epoch: number; nodeId: string } | undefined> {
    const value = (await answeredWithin(this.redis.get(this.keys.owner(chatId)), this.commandTimeoutMs, "a lease lookup")) as string | null;
    if (value === null) return undefined;
    const colon = value.indexOf(":");
    return { epoch: Number(value.slice(0, colon)), nodeId: value.slice(colon + 1) };
  }

  async #holderOnly(script: LuaScript, fence: Fence, args: string[]): Promise<boolean> {
    try {
      return Number(await script.run(this.redis, [this.keys.owner(fence.chatId)], [fence.token, ...args])) === 1;
    } catch (e) {
      if (isFenced(e)) return false;
      throw e;
    }
  }
}
