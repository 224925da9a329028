/**
 * Single-use WebSocket tokens shared by every node: a token issued on one node
 * is accepted once on any. Issuing records the token's SHA-256 in Redis with
 * the token's TTL (PX) before the token is handed out; consuming is one DEL,
 * atomic in Redis, so of two nodes presented the same token at once exactly one
 * sees it removed. The local IssuedTokens still mints the token and bounds how
 * many this node has outstanding (max_outstanding_tokens). Redis unreachable:
 * consuming refuses (fail closed), issuing rejects with TokenNotRecordedError
 * (the route answers 503) and the minted token is forgotten.
 */
import type { RedisClient } from "bun";
import { type IssuedTokens, TokenNotRecordedError } from "../auth/issued-tokens.ts";
import type { ClusterKeys } from "./keys.ts";

const digest = (token: string) => new Bun.CryptoHasher("sha256").update(token).digest("base64url");

export class SharedTokens {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ClusterKeys,
    private readonly local: IssuedTokens,
    private readonly ttlMs: number,
  ) {}

  /** A fresh token recorded cluster-wide, or undefined at this node's cap. */
  async issue(): Promise<string | undefined> {
    const token = this.local.issue();
    if (token === undefined) return undefined;
    try {
      await this.redis.set(this.keys.token(digest(token)), "1", "PX", this.ttlMs);
    } catch (e) {
      // Never handed out: it must not count against this node's cap.
      this.local.consume(token);
      throw new TokenNotRecordedError(`the token could not be recorded in the cluster's Redis: ${(e as Error).message}`);
    }
    return token;
  }

  /** True for exactly one caller across the cluster while the token is live; it is gone either way. */
  async consume(token: string): Promise<boolean> {
    this.local.consume(token);
    try {
      return Number(await this.redis.send("DEL", [this.keys.token(digest(token))])) === 1;
    } catch {
      return false;
    }
  }
}
