/**
 * The Agent contract: the gateway starts a turn, receives its frames through
 * `emit`, and may cancel it through the signal. Every transport (built in,
 * stdio child, agent connecting over WebSocket) implements this one interface.
 */
import type { AgentTurnFrame } from "../protocol/agent.ts";
import type { TurnStatus } from "../protocol/events.ts";

export interface TurnRequest {
  turn_id: string;
  chat_id: string;
  content: string;
  metadata: Record<string, unknown>;
}

export interface TurnResult {
  status: TurnStatus;
  error?: string;
}

export interface Agent {
  readonly name: string;
  /**
   * Runs one turn to its end. Resolves with how it ended; after `signal` aborts
   * the agent should stop soon and resolve with status "cancelled".
   */
  runTurn(turn: TurnRequest, emit: (frame: AgentTurnFrame) => void, signal: AbortSignal): Promise<TurnResult>;
}
