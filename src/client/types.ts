/**
 * The SDK's frame types, taken from the gateway's TypeBox schemas with `Static<>`
 * (type-only imports: nothing of TypeBox reaches the built client), plus the
 * events the SDK itself adds (connection state, gaps, folded turns).
 */
import type { ChatEvent, Reply } from "../protocol/events.ts";
import type { Envelope } from "../protocol/client.ts";

export type { ChatEvent, Envelope, Reply };
/** Any frame the gateway sends a client. */
export type ServerFrame = Reply | { event: "runtime_model_updated"; model_name: string; model_preset?: string };
export type EventName<T extends { event: string }> = T["event"];
export type EventOf<T extends { event: string }, N extends string> = Extract<T, { event: N }>;

/** A chat lost events the SDK cannot recover by resuming: always reported, never hidden. */
export interface GapEvent {
  event: "gap";
  chat_id: string;
  /** "reset": the chat's history ends before what was seen (deleted and recreated, or storage lost). */
  reason: "reset";
  last_seen_seq: number;
  /** The chat's latest seq now; the client follows the chat from there (re-follow from 0 for its new history). */
  seq: number;
}

/** One turn folded from its events. */
export interface TurnSummary {
  event: "turn";
  chat_id: string;
  turn_id: string;
  /** The turn's streamed text: every delta, in order. */
  text: string;
  reasoning: string;
  /** Texts of complete `message` events inside the turn. */
  messages: string[];
  status: string;
  error?: string;
}

/** Events of one chat as the SDK delivers them: deduplicated chat events, gaps, folded turns, errors. */
export type ChatStreamEvent = ChatEvent | GapEvent | TurnSummary | Extract<Reply, { event: "error" }>;

/**
 * open / close: each socket; reconnecting: the delay chosen; refused: the gateway closed for a
 * reason the application must hear (e.g. 1009: a frame too big); auth_failed and closed: final.
 */
export interface ConnectionEvent {
  event: "open" | "close" | "reconnecting" | "refused" | "auth_failed" | "closed";
  code?: number;
  reason?: string;
  attempt?: number;
  delay_ms?: number;
}

/** Everything a client can observe: connection state plus every frame, chat events deduplicated. */
export type ClientEvent = ServerFrame | GapEvent | TurnSummary | ConnectionEvent;
