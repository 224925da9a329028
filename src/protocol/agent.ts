/**
 * The agent protocol (DESIGN.md): JSON objects, one per WebSocket message or
 * one per line on stdio. Built-in agents emit the same turn frames, so every
 * transport shares one path from agent output to chat events. The gateway adds
 * chat_id, seq, stream ids and persistence; an agent never addresses clients.
 */
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { lazyCheckers } from "./checkers.ts";
import { ChatId } from "./client.ts";
import { FRAME_NOT_JSON, FRAME_NOT_OBJECT, UNKNOWN_TYPE_PREFIX } from "./errors.ts";

const Opt = Type.Optional;
const TurnId = Type.String({ minLength: 1, maxLength: 128 });
const Record = Type.Record(Type.String(), Type.Unknown());
const CallId = Type.String({ minLength: 1, maxLength: 128 });

// ── agent → gateway, inside a turn (turn_id names the turn; built-in agents omit it) ──
export const AgentDelta = Type.Object({ type: Type.Literal("delta"), turn_id: Opt(TurnId), text: Type.String() });
export const AgentStreamEnd = Type.Object({ type: Type.Literal("stream_end"), turn_id: Opt(TurnId), text: Opt(Type.String()) });
export const AgentReasoningDelta = Type.Object({ type: Type.Literal("reasoning_delta"), turn_id: Opt(TurnId), text: Type.String() });
export const AgentReasoningEnd = Type.Object({ type: Type.Literal("reasoning_end"), turn_id: Opt(TurnId) });
/** With turn_id: part of that turn. With chat_id and no turn_id: a proactive message into the chat. */
export const AgentMessage = Type.Object({
  type: Type.Literal("message"),
  turn_id: Opt(TurnId),
  chat_id: Opt(ChatId),
  text: Type.String(),
  /** Files to show: paths in the media root or an allowed root (the workspace). */
  media: Opt(Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), { maxItems: 16 })),
  kind: Opt(Type.String({ maxLength: 64 })),
  tool_events: Opt(Type.Array(Record)),
  agent_ui: Opt(Type.Unknown()),
});
export const AgentFileEdit = Type.Object({ type: Type.Literal("file_edit"), turn_id: Opt(TurnId), edits: Type.Array(Record) });
export const AgentToolRequest = Type.Object({
  type: Type.Literal("tool_request"),
  turn_id: Opt(TurnId),
  call_id: CallId,
  tool: Type.String({ minLength: 1, maxLength: 64 }),
  args: Opt(Type.Unknown()),
  deadline_ms: Opt(Type.Integer({ minimum: 1, maximum: 3_600_000 })),
});
export const AgentTurnEnd = Type.Object({
  type: Type.Literal("turn_end"),
  turn_id: TurnId,
  status: Type.Union([Type.Literal("done"), Type.Literal("error"), Type.Literal("cancelled")]),
  latency_ms: Opt(Type.Number()),
  error: Opt(Type.String()),
});

// ── agent → gateway, outside turns ──
export const AgentHello = Type.Object({ type: Type.Literal("hello"), agent: Type.String({ minLength: 1, maxLength: 64 }), protocol: Opt(Type.Integer()) });
export const AgentSessionUpdate = Type.Object({ type: Type.Literal("session_update"), chat_id: ChatId, title: Opt(Type.String({ minLength: 1, maxLength: 200 })) });
export const AgentModel = Type.Object({ type: Type.Literal("model"), model_name: Type.String(), model_preset: Opt(Type.String()) });

export type AgentTurnFrame =
  | Static<typeof AgentDelta>
  | Static<typeof AgentStreamEnd>
  | Static<typeof AgentReasoningDelta>
  | Static<typeof AgentReasoningEnd>
  | Static<typeof AgentMessage>
  | Static<typeof AgentFileEdit>
  | Static<typeof AgentToolRequest>;
export type AgentFrame =
  | AgentTurnFrame
  | Static<typeof AgentTurnEnd>
  | Static<typeof AgentHello>
  | Static<typeof AgentSessionUpdate>
  | Static<typeof AgentModel>;
export type AgentToolRequest = Static<typeof AgentToolRequest>;

// ── gateway → agent ──
export interface TurnFrame {
  type: "turn";
  turn_id: string;
  chat_id: string;
  content: string;
  media: { url: string; path: string; mime: string; name: string }[];
  metadata: Record<string, unknown>;
}
export interface ToolResult {
  call_id: string;
  ok: boolean;
  result?: unknown;
  error?: string;
}
export type GatewayToAgent =
  | TurnFrame
  | { type: "cancel"; turn_id: string }
  | ({ type: "tool_result"; turn_id: string } & ToolResult)
  | { type: "error"; detail: string; reason?: string };

const SCHEMAS: Record<AgentFrame["type"], TSchema> = {
  delta: AgentDelta,
  stream_end: AgentStreamEnd,
  reasoning_delta: AgentReasoningDelta,
  reasoning_end: AgentReasoningEnd,
  message: AgentMessage,
  file_edit: AgentFileEdit,
  tool_request: AgentToolRequest,
  turn_end: AgentTurnEnd,
  hello: AgentHello,
  session_update: AgentSessionUpdate,
  model: AgentModel,
};
const checkerOf = lazyCheckers(SCHEMAS);

export type ParsedAgentFrame = { ok: true; frame: AgentFrame } | { ok: false; reason: string };

/** Reads one agent frame; a bad one yields a reason naming the first failing field. */
export function parseAgentFrame(text: string): ParsedAgentFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: FRAME_NOT_JSON };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, reason: FRAME_NOT_OBJECT };
  const type = (value as { type?: unknown }).type;
  const checker = typeof type === "string" && Object.hasOwn(SCHEMAS, type) ? checkerOf(type as AgentFrame["type"]) : undefined;
  if (!checker) return { ok: false, reason: UNKNOWN_TYPE_PREFIX + JSON.stringify(type ?? null) };
  if (checker.Check(value)) return { ok: true, frame: value as AgentFrame };
  const first = checker.Errors(value).First();
  return { ok: false, reason: `${type}${first?.path ?? ""}: ${first?.message ?? "invalid"}` };
}
