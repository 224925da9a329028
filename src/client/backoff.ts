/** Jittered exponential backoff: the delay before reconnect attempt `attempt` (0-based). */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** 0: no jitter; 1: anywhere between 0 and the full delay. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 15_000, factor: 2, jitter: 0.5 };

export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const full = Math.min(o.maxMs, o.initialMs * o.factor ** attempt);
  return Math.round(full * (1 - o.jitter * random()));
}
