/**
 * Gateway → client frames. Field names, order and meaning follow the nanobot
 * channel; `seq`, `turn_id`, `status`, `latest_seq` and `pong` are additive.
 *
 * Chat events (everything published into a chat) carry a per-chat `seq`, assigned
 * by the hub. Replies to one connection (ready, attached, error, pong) carry none.
 */
import { type Static, type TProperties, Type } from "@sinclair/typebox";

const Opt = Type.Optional;
const ToolEvent = Type.Record(Type.String(), Type.Unknown());
export const GoalState = Type.Object({
  active: Type.Boolean(),
  ui_summary: Opt(Type.String()),
  objective: Opt(Type.String()),
});

/** Fields every chat event shares; `seq` is filled in by the hub at publish time. */
const chatEvent = <E extends string, P extends TProperties>(event: E, props: P) =>
  Type.Object({
    event: Type.Literal(event),
    chat_id: Type.String(),
    ...props,
    turn_id: Opt(Type.String()),
    seq: Opt(Type.Integer({ minimum: 1 })),
  });

export const GoalStatus = chatEvent("goal_status", {
  status: Type.Union([Type.Literal("running"), Type.Literal("idle")]),
  started_at: Opt(Type.Number()),
});
export const Delta = chatEvent("delta", { text: Type.String(), stream_id: Opt(Type.String()) });
export const StreamEnd = chatEvent("stream_end", { text: Opt(Type.String()), stream_id: Opt(Type.String()) });
export const ReasoningDelta = chatEvent("reasoning_delta", { text: Type.String(), stream_id: Opt(Type.String()) });
export const ReasoningEnd = chatEvent("reasoning_end", { stream_id: Opt(Type.String()) });
export const ChatMessage = chatEvent("message", {
  text: Type.String(),
  media: Opt(Type.Array(Type.String())),
  media_urls: Opt(Type.Array(Type.Object({ url: Type.String(), name: Type.String() }))),
  reply_to: Opt(Type.String()),
  latency_ms: Opt(Type.Number()),
  tool_events: Opt(Type.Array(ToolEvent)),
  agent_ui: Opt(Type.Unknown()),
  kind: Opt(Type.String()),
  /** Additive: set on the gateway's reply to a stop only, how many turns (running and queued) it stopped. */
  stopped: Opt(Type.Integer({ minimum: 0 })),
});
export const FileEdit = chatEvent("file_edit", { edits: Type.Array(Type.Record(Type.String(), Type.Unknown())) });
/** "interrupted": the gateway stopped (crash, kill) while the turn ran; closed at the next start. */
export const TurnStatus = Type.Union([Type.Literal("done"), Type.Literal("error"), Type.Literal("cancelled"), Type.Literal("interrupted")]);
export const TurnEnd = chatEvent("turn_end", {
  latency_ms: Opt(Type.Number()),
  goal_state: Opt(GoalState),
  status: TurnStatus,
  error: Opt(Type.String()),
});
export const GoalStateEvent = chatEvent("goal_state", { goal_state: GoalState });
export const SessionUpdated = chatEvent("session_updated", {
  scope: Opt(Type.String()),
  workspace_scope: Opt(Type.Unknown()),
  title: Opt(Type.String()),
});

/** Additive: an agent asks a device in the chat to run a tool it declared (see clients' `capabilities`). */
export const ToolRequestEvent = chatEvent("tool_request", {
  call_id: Type.String(),
  tool: Type.String(),
  args: Type.Unknown(),
  deadline_ms: Type.Integer(),
});
/** Additive: how a tool call ended (a device's answer, or the gateway's reason when none came). */
export const ToolResultEvent = chatEvent("tool_result", {
  call_id: Type.String(),
  ok: Type.Boolean(),
  result: Opt(Type.Unknown()),
  error: Opt(Type.String()),
});

/** What the user sent (nanobot's transcript `user` record), also shown live to the chat's other clients. */
export const UserEvent = chatEvent("user", {
  text: Type.String(),
  media_urls: Opt(Type.Array(Type.Object({ url: Type.String(), name: Type.String() }))),
  client_id: Opt(Type.String()),
  client_msg_id: Opt(Type.String()),
});

export type ChatEvent =
  | Static<typeof GoalStatus>
  | Static<typeof Delta>
  | Static<typeof StreamEnd>
  | Static<typeof ReasoningDelta>
  | Static<typeof ReasoningEnd>
  | Static<typeof ChatMessage>
  | Static<typeof FileEdit>
  | Static<typeof TurnEnd>
  | Static<typeof GoalStateEvent>
  | Static<typeof SessionUpdated>
  | Static<typeof UserEvent>
  | Static<typeof ToolRequestEvent>
  | Static<typeof ToolResultEvent>;
export type TurnStatus = Static<typeof TurnStatus>;

const reply = <E extends string, P extends TProperties>(event: E, props: P) =>
  Type.Object({ event: Type.Literal(event), ...props });

export const Ready = reply("ready", { chat_id: Type.String(), client_id: Type.String() });
export const Attached = reply("attached", { chat_id: Type.String(), latest_seq: Type.Integer({ minimum: 0 }) });
export const ErrorEvent = reply("error", { detail: Type.String(), reason: Opt(Type.String()), chat_id: Opt(Type.String()) });
export const Pong = reply("pong", {});
/** Additive: a message carrying client_msg_id was taken (duplicate: a resend, not run again). */
export const MessageAck = reply("message_ack", { chat_id: Type.String(), client_msg_id: Type.String(), duplicate: Type.Boolean() });
export const RuntimeModelUpdated = reply("runtime_model_updated", { model_name: Type.String(), model_preset: Opt(Type.String()) });

export type Ready = Static<typeof Ready>;
export type Attached = Static<typeof Attached>;
export type ErrorEvent = Static<typeof ErrorEvent>;
export type Pong = Static<typeof Pong>;
export type MessageAck = Static<typeof MessageAck>;
export type RuntimeModelUpdated = Static<typeof RuntimeModelUpdated>;
/** Every frame a client connection may be sent directly. */
export type Reply = Ready | Attached | ErrorEvent | Pong | MessageAck | ChatEvent;
