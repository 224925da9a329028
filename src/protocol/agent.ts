/**
 * Agent → gateway frames inside a turn (DESIGN.md, "Agent protocol"). Built-in
 * agents emit these same objects, so every transport shares one path from
 * agent output to chat events. The gateway adds chat_id, seq, turn_id and
 * stream ids; an agent never addresses clients directly.
 */
import { type Static, Type } from "@sinclair/typebox";

const Opt = Type.Optional;

export const AgentDelta = Type.Object({ type: Type.Literal("delta"), text: Type.String() });
export const AgentStreamEnd = Type.Object({ type: Type.Literal("stream_end"), text: Opt(Type.String()) });
export const AgentReasoningDelta = Type.Object({ type: Type.Literal("reasoning_delta"), text: Type.String() });
export const AgentReasoningEnd = Type.Object({ type: Type.Literal("reasoning_end") });
export const AgentMessage = Type.Object({
  type: Type.Literal("message"),
  text: Type.String(),
  kind: Opt(Type.String()),
  tool_events: Opt(Type.Array(Type.Record(Type.String(), Type.Unknown()))),
  agent_ui: Opt(Type.Unknown()),
});
export const AgentFileEdit = Type.Object({
  type: Type.Literal("file_edit"),
  edits: Type.Array(Type.Record(Type.String(), Type.Unknown())),
});

export type AgentTurnFrame =
  | Static<typeof AgentDelta>
  | Static<typeof AgentStreamEnd>
  | Static<typeof AgentReasoningDelta>
  | Static<typeof AgentReasoningEnd>
  | Static<typeof AgentMessage>
  | Static<typeof AgentFileEdit>;
