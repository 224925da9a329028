/** The token bucket behind the HTTP rate limits, on an injected clock. */
import { expect, test } from "bun:test";
import { RateLimiter } from "../src/http/rate-limit.ts";

test("a burst of perMinute, then refills evenly; Retry-After is the wait for one token", () => {
  let now = 0;
  const limiter = new RateLimiter(6, () => now);
  expect(Array.from({ length: 6 }, () => limiter.take("a"))).toEqual([0, 0, 0, 0, 0, 0]);
  expect(limiter.take("a")).toBe(10);
  expect(limiter.take("b")).toBe(0);
  now = 9_999;
  expect(limiter.take("a")).toBe(1);
  now = 10_000;
  expect(limiter.take("a")).toBe(0);
  expect(limiter.take("a")).toBe(10);
  now = 10_000 + 3_600_000;
  expect(Array.from({ length: 7 }, () => limiter.take("a") === 0).filter(Boolean)).toHaveLength(6);
});

test("0 means unlimited; refilled buckets are forgotten when the table is full", () => {
  expect(Array.from({ length: 1000 }, () => new RateLimiter(0).take("x")).every((w) => w === 0)).toBe(true);
  let now = 0;
  const limiter = new RateLimiter(60, () => now);
  for (let i = 0; i < 100_000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`);
  now = 60_000;
  limiter.take("new");
  expect(limiter.tracked).toBe(1);
});
