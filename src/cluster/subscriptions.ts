/**
 * The node's subscribed Redis connection and what it is subscribed to (a
 * subscribed connection runs nothing else). Bun's client reconnects by itself
 * after the connection drops, but subscribes to nothing again, and it keeps
 * its listeners, so subscribing again would call each twice: after a reconnect
 * every channel is dropped locally and subscribed afresh with its one
 * listener, then the `reconnected` callbacks run (the fan-out reads what it
 * missed meanwhile from the chats' streams).
 */
import type { RedisClient } from "bun";

type Listener = (message: string, channel: string) => void;

export class Subscriptions {
  readonly #listeners = new Map<string, Listener>();
  readonly #reconnected: (() => void)[] = [];

  constructor(
    private readonly client: RedisClient,
    private readonly failed: (error: unknown) => void,
  ) {
    // Set once the first connection is up: every later call is a reconnect.
    client.onconnect = () => void this.#resubscribe();
  }

  async subscribe(channel: string, listener: Listener): Promise<void> {
    this.#listeners.set(channel, listener);
    await this.client.subscribe(channel, listener);
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.#listeners.delete(channel)) return;
    await this.client.unsubscribe(channel);
  }

  /** Runs after every reconnect, once the channels are subscribed again. */
  onReconnect(callback: () => void): void {
    this.#reconnected.push(callback);
  }

  close(): void {
    this.client.onconnect = null;
    this.client.close();
  }

  async #resubscribe(): Promise<void> {
    try {
      for (const [channel, listener] of this.#listeners) {
        await this.client.unsubscribe(channel);
        // Unfollowed while the connection was down: nothing to restore.
        if (this.#listeners.get(channel) === listener) await this.client.subscribe(channel, listener);
      }
    } catch (e) {
      // The connection dropped again: its next reconnect starts over.
      this.failed(e);
      return;
    }
    for (const callback of this.#reconnected) callback();
  }
}
