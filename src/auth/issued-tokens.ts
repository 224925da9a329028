/**
 * Issued tokens: random and short-lived. WebSocket tokens are single-use: the
 * handshake that presents one consumes it, valid or expired, so it can never be
 * replayed. API tokens (a separate store) are checked without consuming, until
 * they expire. Outstanding tokens are capped so issuing cannot grow memory unbounded.
 */
import { randomBytes } from "node:crypto";

/**
 * Single-use tokens as the handshake and the issue routes use them: this
 * node's IssuedTokens, or tokens shared by a cluster (src/cluster/shared-tokens.ts).
 */
export interface SingleUseTokens {
  /** A fresh token, or undefined at the cap of live tokens; rejects with TokenNotRecordedError when a shared store refused it. */
  issue(): string | undefined | Promise<string | undefined>;
  /** True if the token was live; it is removed either way. */
  consume(token: string): boolean | Promise<boolean>;
}

/**
 * Reusable tokens (API tokens, a local browser's bootstrap token on REST) as
 * bootstrap and the API credential use them: this node's IssuedTokens, or
 * tokens shared by a cluster (src/cluster/shared-tokens.ts).
 */
export interface ReusableTokens {
  /** A fresh token, or undefined at the cap of live tokens; rejects with TokenNotRecordedError when a shared store refused it. */
  issue(): string | undefined | Promise<string | undefined>;
  /** Accepts a token minted elsewhere for this store's TTL; false at the cap. */
  admit(token: string): boolean | Promise<boolean>;
  /** True while the token is live; it stays live. */
  isLive(token: string): boolean | Promise<boolean>;
}

/** The token could not be recorded where every node finds it (the cluster's Redis): nothing was handed out (HTTP 503). */
export class TokenNotRecordedError extends Error {}

/** nanobot's prefix: clients written for it recognise tokens by it. */
const PREFIX = "nbwt_";

export class IssuedTokens implements SingleUseTokens, ReusableTokens {
  /** token → expiry (ms since epoch). */
  readonly #expiries = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxOutstanding: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A fresh token, or undefined when the cap of live tokens is reached. */
  issue(): string | undefined {
    this.#purgeExpired();
    if (this.#expiries.size >= this.maxOutstanding) return undefined;
    const token = PREFIX + randomBytes(32).toString("base64url");
    this.#expiries.set(token, this.now() + this.ttlMs);
    return token;
  }

  /**
   * Accepts a token minted elsewhere (a bootstrap WebSocket token that may also
   * serve REST) for this store's TTL; false at the cap, and the token then stays unknown here.
   */
  admit(token: string): boolean {
    this.#purgeExpired();
    if (this.#expiries.size >= this.maxOutstanding) return false;
    this.#expiries.set(token, this.now() + this.ttlMs);
    return true;
  }

  /** True if the token was live; it is removed either way. */
  consume(token: string): boolean {
    const expiry = this.#expiries.get(token);
    if (expiry === undefined) return false;
    this.#expiries.delete(token);
    return this.now() <= expiry;
  }

  /** True if the token is live; it stays live (reusable API credentials). */
  isLive(token: string): boolean {
    const expiry = this.#expiries.get(token);
    return expiry !== undefined && this.now() <= expiry;
  }

  get outstanding(): number {
    return this.#expiries.size;
  }

  /** Every token gets the same TTL, so insertion order is expiry order: stop at the first live one. */
  #purgeExpired(): void {
    const now = this.now();
    for (const [token, expiry] of this.#expiries) {
      if (now <= expiry) return;
      this.#expiries.delete(token);
    }
  }
}
