/**
 * What the SDK does when its socket closes, by close code: the one table of
 * reconnect policy. "now": reconnect at once (the gateway asked us to resume);
 * "soon": one base delay, no growth (the gateway is restarting or hiccuped);
 * "backoff": jittered exponential backoff; "stop": give up and say why.
 * `surface`: also report the close as an error to the application.
 * Codes the gateway itself sends come from its error catalog (constants only:
 * bundled, they add a few bytes and no runtime dependency).
 */
import { CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, CLOSE_POLICY, CLOSE_SLOW_CONSUMER, CLOSE_TOO_BIG } from "../protocol/errors.ts";

export type Reconnect = "now" | "soon" | "backoff" | "stop";
export interface ClosePolicy {
  reconnect: Reconnect;
  surface?: boolean;
  why: string;
}

export const CLOSE_POLICIES: Record<number, ClosePolicy> = {
  1000: { reconnect: "backoff", why: "normal closure by the gateway" },
  [CLOSE_GOING_AWAY]: { reconnect: "soon", why: "gateway going away (shutdown or restart)" },
  1006: { reconnect: "backoff", why: "connection lost without a close frame" },
  [CLOSE_POLICY]: { reconnect: "stop", surface: true, why: "policy violation" },
  [CLOSE_TOO_BIG]: { reconnect: "backoff", surface: true, why: "a frame was larger than the gateway accepts" },
  [CLOSE_INTERNAL_ERROR]: { reconnect: "soon", why: "internal gateway error" },
  1012: { reconnect: "soon", why: "gateway restarting" },
  1013: { reconnect: "backoff", why: "gateway overloaded, try again later" },
  [CLOSE_SLOW_CONSUMER]: { reconnect: "now", why: "slow consumer: resume with since_seq" },
};
const DEFAULT_POLICY: ClosePolicy = { reconnect: "backoff", why: "unexpected close" };
/** The upgrade was refused with 401/403: a new token will not help. */
export const AUTH_FAILED: ClosePolicy = { reconnect: "stop", surface: true, why: "authentication refused (HTTP 401/403 on the upgrade)" };

export const policyFor = (code: number): ClosePolicy => CLOSE_POLICIES[code] ?? DEFAULT_POLICY;

/**
 * A refused upgrade surfaces differently per runtime: Bun names the status in the
 * error message; browsers and Node do not, so there it is retried with backoff.
 */
export const isAuthRefusal = (errorMessage: string): boolean => /status code:? (401|403)\b/.test(errorMessage);
