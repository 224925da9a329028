/** Folds a turn's events into its text: deltas in order, reasoning, complete messages, final status. */
import type { ChatEvent } from "../protocol/events.ts";
import type { TurnSummary } from "./types.ts";

export function foldTurn(events: Iterable<ChatEvent>): Omit<TurnSummary, "event" | "chat_id" | "turn_id"> {
  const turn = { text: "", reasoning: "", messages: [] as string[], status: "running", error: undefined as string | undefined };
  for (const e of events) {
    if (e.event === "delta") turn.text += e.text;
    else if (e.event === "reasoning_delta") turn.reasoning += e.text;
    else if (e.event === "message") turn.messages.push(e.text);
    else if (e.event === "turn_end") {
      turn.status = e.status;
      turn.error = e.error;
    }
  }
  return turn;
}

/** Collects each turn's events as they arrive and yields its summary at turn_end. */
export class TurnCollector {
  readonly #open = new Map<string, ChatEvent[]>();

  add(event: ChatEvent): TurnSummary | undefined {
    const turnId = event.turn_id;
    if (turnId === undefined) return undefined;
    const events = this.#open.get(turnId) ?? [];
    events.push(event);
    this.#open.set(turnId, events);
    if (event.event !== "turn_end") return undefined;
    this.#open.delete(turnId);
    return { event: "turn", chat_id: event.chat_id, turn_id: turnId, ...foldTurn(events) };
  }
}
