/**
 * The Agent contract: the gateway starts a turn, receives its frames through
 * `emit`, and may cancel it through the signal. Every transport (built in,
 * stdio child, agent connecting over WebSocket) implements this one interface.
 */
import type { AgentTurnFrame, ToolResult } from "../protocol/agent.ts";
import type { TurnStatus } from "../protocol/events.ts";

export interface TurnRequest {
  turn_id: string;
  chat_id: string;
  content: string;
  /** Files the user sent: where they are on this machine, and a signed URL. */
  media: AgentMedia[];
  metadata: Record<string, unknown>;
  /** Seq of this turn's `user` event: history for the turn is everything up to it. */
  user_seq: number;
}

export interface AgentMedia {
  url: string;
  path: string;
  mime: string;
  name: string;
}

export interface TurnResult {
  status: TurnStatus;
  error?: string;
}

export type Emit = (frame: AgentTurnFrame) => void;

export interface Agent {
  readonly name: string;
  /**
   * Runs one turn to its end. Resolves with how it ended; after `signal` aborts
   * the agent should stop soon and resolve with status "cancelled".
   */
  runTurn(turn: TurnRequest, emit: Emit, signal: AbortSignal): Promise<TurnResult>;
  /** Delivers the result of a device tool call the agent asked for (agents that can ask implement it). */
  toolResult?(turnId: string, result: ToolResult): void;
  /** Shutdown: stop child processes, close connections. */
  close?(): Promise<void>;
}

/** A `message` an agent sends outside a turn, without its routing fields. */
export type ProactiveMessage = Omit<Extract<AgentTurnFrame, { type: "message" }>, "type" | "turn_id" | "chat_id">;

/** What agents may do outside a turn; runs/agent-output.ts publishes them like in-turn output. */
export interface AgentEvents {
  proactiveMessage(chatId: string, frame: ProactiveMessage): void;
  sessionUpdate(chatId: string, title: string | undefined): void;
  model(modelName: string, modelPreset?: string): void;
}
