/**
 * Turns waiting for an agent to become reachable (a stdio child saying hello, a
 * WebSocket agent connecting). Each wait ends exactly one way (the agent is
 * ready, the timeout passes, the turn is stopped, or the agent is closed) and
 * leaves no timer or listener behind, so a stop is never held up by the wait.
 */
interface Waiter {
  ready: () => void;
  fail: (error: Error) => void;
}

export class ReadyGate {
  readonly #waiting = new Set<Waiter>();

  /** Resolves when `open` is called; rejects with `timeoutReason` after `timeoutMs`, or "cancelled" when `signal` aborts. */
  wait(timeoutMs: number, timeoutReason: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new Error("cancelled"));
    return new Promise((resolve, reject) => {
      const onAbort = () => waiter.fail(new Error("cancelled"));
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#waiting.delete(waiter);
      };
      const waiter: Waiter = {
        ready: () => {
          finish();
          resolve();
        },
        fail: (error) => {
          finish();
          reject(error);
        },
      };
      const timer = setTimeout(() => waiter.fail(new Error(timeoutReason)), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.add(waiter);
    });
  }

  /** The agent is reachable: every waiting turn goes on. */
  open(): void {
    for (const waiter of [...this.#waiting]) waiter.ready();
  }

  /** The agent is going away for good: every waiting turn fails with `reason`. */
  close(reason: string): void {
    for (const waiter of [...this.#waiting]) waiter.fail(new Error(reason));
  }
}
