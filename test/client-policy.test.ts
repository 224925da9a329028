/** The SDK's reconnect decisions as pure functions: backoff bounds and the close-code table. */
import { describe, expect, test } from "bun:test";
import { backoffDelay, CLOSE_POLICIES, DEFAULT_BACKOFF } from "agentgate/client";
import { isAuthRefusal, policyFor } from "../src/client/close-codes.ts";

describe("reconnect policy", () => {
  test("backoff grows by the factor, is capped, and jitter only shortens it", () => {
    const o = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, o, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([0, 1, 4].map((a) => backoffDelay(a, o, () => 1))).toEqual([50, 100, 500]);
    expect(backoffDelay(50, DEFAULT_BACKOFF, () => 0)).toBe(DEFAULT_BACKOFF.maxMs);
  });

  test("close codes: resume closes retry at once, restarts soon, policy violations stop, unknown codes back off", () => {
    expect(CLOSE_POLICIES[4001]!.reconnect).toBe("now");
    expect(policyFor(1001).reconnect).toBe("soon");
    expect(policyFor(1011).reconnect).toBe("soon");
    expect(policyFor(1009)).toMatchObject({ reconnect: "backoff", surface: true });
    expect(policyFor(1008).reconnect).toBe("stop");
    expect(policyFor(4999).reconnect).toBe("backoff");
  });

  test("a refused upgrade is recognised from Bun's error message", () => {
    expect(isAuthRefusal("WebSocket connection to 'ws://x/' failed: Expected 101 status code: 401")).toBe(true);
    expect(isAuthRefusal("Expected 101 status code: 403")).toBe(true);
    expect(isAuthRefusal("Expected 101 status code: 404")).toBe(false);
    expect(isAuthRefusal("Received network error or non-101 status code.")).toBe(false);
  });
});
