/**
 * Tools on the client device. An agent's `tool_request` becomes a chat event
 * (persisted and replayed, so a reconnecting device sees what is pending); the
 * chat's clients that declared the tool may answer with `tool_result`. The first
 * answer goes back to the agent and becomes a chat event too; later ones are
 * refused. With no capable client, past the deadline, or when the last capable
 * client has been gone for the grace, the agent gets `ok: false` with a reason.
 */
import type { Agent } from "../agents/agent.ts";
import type { Hub } from "../chat/hub.ts";
import type { AgentToolRequest, ToolResult } from "../protocol/agent.ts";

export interface ToolCallOptions {
  hub: Hub;
  /** How many open connections subscribed to the chat declared this tool. */
  capableClients: (chatId: string, tool: string) => number;
  defaultTimeoutMs: number;
  disconnectGraceMs: number;
}

interface PendingCall {
  chatId: string;
  turnId: string;
  tool: string;
  agent: Agent;
  deadline: Timer;
  grace?: Timer;
}

export type ToolAnswer = "accepted" | "unknown_call";

export class ToolCalls {
  readonly #pending = new Map<string, PendingCall>();

  constructor(private readonly options: ToolCallOptions) {}

  request(chatId: string, turnId: string, agent: Agent, frame: AgentToolRequest): void {
    const { call_id, tool } = frame;
    if (this.#pending.has(call_id)) return agent.toolResult?.(turnId, { call_id, ok: false, error: "duplicate call_id" });
    const deadlineMs = frame.deadline_ms ?? this.options.defaultTimeoutMs;
    this.options.hub.publish({ event: "tool_request", chat_id: chatId, call_id, tool, args: frame.args ?? null, deadline_ms: deadlineMs, turn_id: turnId });
    const deadline = setTimeout(() => this.#settle(call_id, { call_id, ok: false, error: "deadline_exceeded" }), deadlineMs);
    this.#pending.set(call_id, { chatId, turnId, tool, agent, deadline });
    if (this.options.capableClients(chatId, tool) === 0) this.#settle(call_id, { call_id, ok: false, error: "no_capable_client" });
  }

  /** A client's answer. Only the first for a pending call in that chat counts. */
  answer(chatId: string, result: ToolResult): ToolAnswer {
    const call = this.#pending.get(result.call_id);
    if (!call || call.chatId !== chatId) return "unknown_call";
    this.#settle(result.call_id, result);
    return "accepted";
  }

  /** A client left the chat: calls it could have answered wait the grace for another capable one. */
  clientLeft(chatIds: Iterable<string>): void {
    const chats = new Set(chatIds);
    for (const [callId, call] of this.#pending) {
      if (!chats.has(call.chatId) || call.grace || this.options.capableClients(call.chatId, call.tool) > 0) continue;
      call.grace = setTimeout(() => {
        if (this.options.capableClients(call.chatId, call.tool) === 0) this.#settle(callId, { call_id: callId, ok: false, error: "device_disconnected" });
        else call.grace = undefined;
      }, this.options.disconnectGraceMs);
    }
  }

  /** The turn ended: its open calls have nobody left to answer. */
  turnEnded(turnId: string): void {
    for (const [callId, call] of this.#pending) if (call.turnId === turnId) this.#settle(callId, { call_id: callId, ok: false, error: "turn_ended" }, false);
  }

  #settle(callId: string, result: ToolResult, tellAgent = true): void {
    const call = this.#pending.get(callId);
    if (!call) return;
    this.#pending.delete(callId);
    clearTimeout(call.deadline);
    clearTimeout(call.grace);
    this.options.hub.publish({ event: "tool_result", chat_id: call.chatId, ...result, turn_id: call.turnId });
    if (tellAgent) call.agent.toolResult?.(call.turnId, result);
  }
}
