/**
 * Per-client-address rate limits: a token bucket per address holding up to
 * `perMinute` requests, refilled evenly over a minute. A refused request gets
 * 429 with Retry-After (whole seconds until one token is back). Buckets that
 * have refilled are forgotten when the table grows, so memory stays bounded
 * by the number of addresses active within a minute (and a hard cap).
 */
import type { MiddlewareHandler } from "hono";
import type { Peer } from "../auth/peer.ts";
import { refusal } from "./refusal.ts";

interface Bucket {
  tokens: number;
  updatedMs: number;
}

const MAX_TRACKED = 100_000;

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #perMs: number;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#perMs = perMinute / 60_000;
  }

  /** 0 when the request may go ahead (and is counted), else the seconds until it may. */
  take(key: string): number {
    if (this.perMinute === 0) return 0;
    const now = this.now();
    const bucket = this.#refilled(key, now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#perMs / 1000));
  }

  get tracked(): number {
    return this.#buckets.size;
  }

  #refilled(key: string, now: number): Bucket {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_TRACKED) this.#forgetFull(now);
      bucket = { tokens: this.perMinute, updatedMs: now };
      this.#buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.updatedMs) * this.#perMs);
    bucket.updatedMs = now;
    return bucket;
  }

  /** Drops buckets that are full again (they behave exactly like new ones); the oldest go first if none are. */
  #forgetFull(now: number): void {
    for (const [key, b] of this.#buckets) if (b.tokens + (now - b.updatedMs) * this.#perMs >= this.perMinute) this.#buckets.delete(key);
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size < MAX_TRACKED) break;
      this.#buckets.delete(key);
    }
  }
}

/** The client address a limit counts against: the peer's, or "unix" for the unix socket. */
export const rateKey = (peer: Peer) => (peer.viaUnixSocket && peer.address === "" ? "unix" : peer.address);

/** Middleware answering 429 + Retry-After once the peer's bucket is empty. */
export function rateLimit(limiter: RateLimiter, peerOf: (env: unknown) => Peer): MiddlewareHandler {
  return async (c, next) => {
    const wait = limiter.take(rateKey(peerOf(c.env)));
    if (wait > 0) return refusal(429, "Too Many Requests", `too many requests from this address; retry in ${wait} s`, { "retry-after": String(wait) });
    await next();
  };
}
