/**
 * Issued tokens shared by every node: a token issued on one node is accepted
 * on any. Issuing (or admitting) records the token's SHA-256 in Redis with the
 * token's TTL (PX) before the token is handed out. A single-use token is
 * consumed with one DEL, atomic in Redis, so of two nodes presented the same
 * token at once exactly one sees it removed; a reusable one (API tokens, a
 * local browser's bootstrap token on REST) is live while its key exists. Each
 * kind of token has its own keys. The local IssuedTokens still mints the token
 * and bounds how many this node has outstanding (max_outstanding_tokens), and
 * answers for the reusable tokens it issued itself without a round trip.
 * Redis unreachable: checking refuses (fail closed), issuing rejects with
 * TokenNotRecordedError (the route answers 503) and the minted token is forgotten.
 */
import type { RedisClient } from "bun";
import { type IssuedTokens, type ReusableTokens, type SingleUseTokens, TokenNotRecordedError } from "../auth/issued-tokens.ts";
import type { ClusterKeys, TokenKind } from "./keys.ts";

const digest = (token: string) => new Bun.CryptoHasher("sha256").update(token).digest("base64url");

export class SharedTokens implements SingleUseTokens, ReusableTokens {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ClusterKeys,
    private readonly kind: TokenKind,
    private readonly local: IssuedTokens,
    private readonly ttlMs: number,
  ) {}

  /** A fresh token recorded cluster-wide, or undefined at this node's cap. */
  async issue(): Promise<string | undefined> {
    const token = this.local.issue();
    if (token === undefined) return undefined;
    await this.#record(token);
    return token;
  }

  /** A token minted elsewhere (bootstrap's WebSocket token), recorded cluster-wide for this store's TTL; false at this node's cap. */
  async admit(token: string): Promise<boolean> {
    if (!this.local.admit(token)) return false;
    await this.#record(token);
    return true;
  }

  /** True for exactly one caller across the cluster while the token is live; it is gone either way. */
  async consume(token: string): Promise<boolean> {
    this.local.consume(token);
    try {
      return Number(await this.redis.send("DEL", [this.#key(token)])) === 1;
    } catch {
      return false;
    }
  }

  /** True while the token is live on any node (issued here: known without asking Redis). */
  async isLive(token: string): Promise<boolean> {
    if (this.local.isLive(token)) return true;
    try {
      return Number(await this.redis.send("EXISTS", [this.#key(token)])) === 1;
    } catch {
      return false;
    }
  }

  async #record(token: string): Promise<void> {
    try {
      await this.redis.set(this.#key(token), "1", "PX", this.ttlMs);
    } catch (e) {
      // Never handed out: it must not count against this node's cap.
      this.local.consume(token);
      throw new TokenNotRecordedError(`the token could not be recorded in the cluster's Redis: ${(e as Error).message}`);
    }
  }

  #key(token: string): string {
    return this.keys.token(this.kind, digest(token));
  }
}
