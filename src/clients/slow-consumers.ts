/**
 * Slow consumers. A client that stops reading must not grow the gateway's memory
 * without bound, slow other clients, or silently miss an event.
 *
 * Bun's own answer at its backpressure limit is either to drop frames silently
 * (closeOnBackpressureLimit false) or to cut the socket with no close frame, the
 * frames it still held discarded (true: the client sees 1006). So the gateway
 * checks every client socket's queued bytes every `checkMs`, and past `maxBytes`
 * closes it with CLOSE_SLOW_CONSUMER (measured in Bun 1.4.4: the close handler
 * runs at once, the socket leaves every topic, and the frames already queued are
 * still sent, followed by the close frame, if the client reads within ~10 s;
 * after that Bun drops the connection and its buffer). Bun's limit, above ours,
 * stays on as a backstop for a socket that outgrows ours between two checks.
 * Either way the client knows it was cut and resumes with `attach {since_seq}`.
 */
import type { Logger } from "../log.ts";
import { metrics } from "../metrics/metrics.ts";
import { CLOSE_SLOW_CONSUMER, SLOW_CONSUMER_REASON } from "../protocol/errors.ts";
import type { ClientSocket } from "./client-socket.ts";

export interface SlowConsumerOptions {
  /** Bytes queued in user space for one socket (beyond the kernel's buffers) before it is closed. */
  maxBytes: number;
  checkMs: number;
  log: Logger;
}

/** Chats named in the log line, at most. */
const LOGGED_CHATS = 8;

export class SlowConsumers {
  readonly #watched = new Set<ClientSocket>();
  #timer: Timer | undefined;

  constructor(private readonly options: SlowConsumerOptions) {}

  watch(ws: ClientSocket): void {
    this.#watched.add(ws);
    this.#timer ??= setInterval(() => this.#check(), this.options.checkMs);
  }

  forget(ws: ClientSocket): void {
    this.#watched.delete(ws);
    if (this.#watched.size > 0 || !this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    for (const ws of this.#watched) {
      const buffered = ws.getBufferedAmount();
      if (buffered > this.options.maxBytes) this.#cut(ws, buffered);
    }
  }

  #cut(ws: ClientSocket, buffered: number): void {
    this.options.log.warn("closed a slow consumer", {
      client_id: ws.data.clientId,
      chats: [...ws.data.chats].slice(0, LOGGED_CHATS),
      buffered_bytes: buffered,
      code: CLOSE_SLOW_CONSUMER,
    });
    this.forget(ws);
    metrics.slowConsumerClosed();
    ws.close(CLOSE_SLOW_CONSUMER, SLOW_CONSUMER_REASON);
  }
}
