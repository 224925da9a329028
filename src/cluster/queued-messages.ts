/**
 * The messages a chat's writer accepted but has not started a turn for, as a
 * node mirroring the chat reads them off its events, so that a node taking the
 * chat over from a dead writer runs them. A writer runs a chat's messages one
 * turn at a time, in order (src/runs/runs.ts), so each `goal_status running`
 * starts the oldest `user` event still waiting; a stop drops them all (the
 * runs' stop notice, published as the queue is cleared: known by its
 * `stopped` count, never by its text, which anyone may publish through the
 * chats API); a message closed unrun at the writer's shutdown
 * (`turn_end` with `gateway_shutdown`) drops the oldest. Bounded per chat:
 * a writer never has more than `max_queued_turns` waiting plus the one starting.
 */
import type { QueuedTurn } from "../clients/chat-actions.ts";
import { GATEWAY_SHUTDOWN } from "../protocol/errors.ts";

/** The fields of a mirrored event read here. */
export interface MirroredEvent {
  event?: string;
  status?: string;
  turn_id?: string;
  text?: unknown;
  client_id?: unknown;
  media_urls?: unknown;
  error?: unknown;
  /** The runs' stop notice only: how many turns it stopped. */
  stopped?: unknown;
}

/** The `{url, name}` items of a mirrored event's `media_urls` (free-form JSON from another node: anything else is left out). */
function mediaUrls(value: unknown): { url: string; name: string }[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((m: { url?: unknown; name?: unknown } | null) => (typeof m?.url === "string" ? [{ url: m.url, name: typeof m.name === "string" ? m.name : "" }] : []));
}

export class QueuedMessages {
  readonly #byChat = new Map<string, QueuedTurn[]>();

  constructor(private readonly maxPerChat: number) {}

  observe(chatId: string, seq: number, e: MirroredEvent): void {
    if (e.event === "user" && typeof e.text === "string") {
      const waiting = this.#byChat.get(chatId) ?? [];
      waiting.push({ seq, text: e.text, clientId: typeof e.client_id === "string" ? e.client_id : "", media: mediaUrls(e.media_urls) });
      if (waiting.length > this.maxPerChat) waiting.shift();
      this.#byChat.set(chatId, waiting);
    } else if ((e.event === "goal_status" && e.status === "running") || (e.event === "turn_end" && e.error === GATEWAY_SHUTDOWN)) {
      this.#shift(chatId);
    } else if (e.event === "message" && e.turn_id === undefined && typeof e.stopped === "number") {
      this.#byChat.delete(chatId);
    }
  }

  /** The chat's waiting messages, oldest first; forgotten here. */
  take(chatId: string): QueuedTurn[] {
    const waiting = this.#byChat.get(chatId) ?? [];
    this.#byChat.delete(chatId);
    return waiting;
  }

  #shift(chatId: string): void {
    const waiting = this.#byChat.get(chatId);
    waiting?.shift();
    if (waiting?.length === 0) this.#byChat.delete(chatId);
  }
}
