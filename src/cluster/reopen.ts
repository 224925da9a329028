/**
 * Keeps a Redis connection open for the life of the node. Bun's RedisClient
 * reconnects by itself after a drop, but only `maxRetries` times (about 30 s
 * with its default 20); then it gives up for good: it runs `onclose` and fails
 * every command from then on. A node must not stay cut off once Redis is back,
 * so after a give-up the connection is opened again (`connect()`, which makes
 * its own round of attempts), waiting between rounds from `REOPEN_FIRST_MS`,
 * doubled each time up to `maxDelayMs`, until it succeeds or the node stops
 * it. Commands fail fast meanwhile (the hub retries its appends). A subscribed
 * connection subscribes again on its `onconnect` (subscriptions.ts), which a
 * reopened connection runs too, and the fan-out then catches up.
 */
import type { RedisClient } from "bun";

/** The first wait before opening again: Redis restarting is usually back within it. */
const REOPEN_FIRST_MS = 50;

export interface ReopenLog {
  gaveUp(error: unknown): void;
  reopened(): void;
}

export class KeptOpen {
  #closed = false;
  #reopening = false;

  constructor(
    private readonly client: RedisClient,
    private readonly maxDelayMs: number,
    private readonly log: ReopenLog,
  ) {
    // Runs when the client gives up (and when one of our own connect() rounds fails, while already reopening).
    client.onclose = (error) => {
      if (this.#closed || this.#reopening) return;
      this.log.gaveUp(error);
      void this.#reopen();
    };
  }

  /** The node is closing the connection: not opened again from now on (the caller closes the client). */
  stop(): void {
    this.#closed = true;
    this.client.onclose = null;
  }

  async #reopen(): Promise<void> {
    this.#reopening = true;
    try {
      for (let delay = REOPEN_FIRST_MS; !this.#closed; delay = Math.min(delay * 2, this.maxDelayMs)) {
        await Bun.sleep(Math.min(delay, this.maxDelayMs));
        if (this.#closed) return;
        try {
          await this.client.connect();
          this.log.reopened();
          return;
        } catch {
          // Not back yet: the next round after a longer wait.
        }
      }
    } finally {
      this.#reopening = false;
    }
  }
}
