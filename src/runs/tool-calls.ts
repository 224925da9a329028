/**
 * Tools on the client device. An agent's `tool_request` becomes a chat event
 * (persisted and replayed, so a reconnecting device sees what is pending); the
 * chat's clients that declared the tool may answer with `tool_result` (a
 * connection not attached to the chat, or that never declared the tool, is
 * refused and changes nothing). The first answer goes back to the agent and
 * becomes a chat event too; later ones are refused. Call ids are the agent's and
 * scoped to their chat: two chats may both use "call_1" at once. With no capable client, past the deadline, or when the last capable
 * client has been gone for the grace, the agent gets `ok: false` with a reason.
 *
 * Clustered, a capable client on another live node counts too (cluster/devices.ts):
 * asked of Redis only when there is none here, so a single node (no
 * `elsewhere`) decides synchronously as before. While a call has no
 * capable client here, the writer asks again every `elsewhere.recheckMs`: one gone from
 * another node is noticed within that, then waited for the grace.
 */
import type { Agent } from "../agents/agent.ts";
import type { Hub } from "../chat/hub.ts";
import { metrics } from "../metrics/metrics.ts";
import type { AgentToolRequest, ToolResult } from "../protocol/agent.ts";
import { TOOL_CALL_FAILED } from "../protocol/errors.ts";

export interface ToolCallOptions {
  hub: Hub;
  /** How many open connections subscribed to the chat declared this tool. */
  capableClients: (chatId: string, tool: string) => number;
  /** Clustered: capable clients on other nodes. */
  elsewhere?: {
    /** Whether a live node other than this one has a capable client of the chat; undefined when Redis did not say. */
    capable: (chatId: string, tool: string) => Promise<boolean | undefined>;
    /** How often a call with no capable client here looks again (cluster_device_recheck_ms). */
    recheckMs: number;
  };
  defaultTimeoutMs: number;
  disconnectGraceMs: number;
}

interface PendingCall {
  chatId: string;
  callId: string;
  turnId: string;
  tool: string;
  agent: Agent;
  deadline: Timer;
  grace?: Timer;
  /** Clustered, the next look for capable clients on other nodes. */
  recheck?: Timer;
}

export type ToolAnswer = "accepted" | "unknown_call" | "not_capable";

/** Pending calls are keyed by chat and call id together. */
const callKey = (chatId: string, callId: string) => `${chatId}\n${callId}`;

export class ToolCalls {
  readonly #pending = new Map<string, PendingCall>();

  constructor(private readonly options: ToolCallOptions) {}

  request(chatId: string, turnId: string, agent: Agent, frame: AgentToolRequest): void {
    const { call_id, tool } = frame;
    const key = callKey(chatId, call_id);
    if (this.#pending.has(key)) return agent.toolResult?.(turnId, { call_id, ok: false, error: TOOL_CALL_FAILED.duplicate });
    const deadlineMs = frame.deadline_ms ?? this.options.defaultTimeoutMs;
    this.options.hub.publish({ event: "tool_request", chat_id: chatId, call_id, tool, args: frame.args ?? null, deadline_ms: deadlineMs, turn_id: turnId });
    const deadline = setTimeout(() => this.#settle(key, { call_id, ok: false, error: TOOL_CALL_FAILED.deadline }), deadlineMs);
    const call: PendingCall = { chatId, callId: call_id, turnId, tool, agent, deadline };
    this.#pending.set(key, call);
    this.#whenCapable(key, call, (capable) => {
      if (capable === false) this.#settle(key, { call_id, ok: false, error: TOOL_CALL_FAILED.noCapableClient });
      else this.#recheckLater(key, call);
    });
  }

  /**
   * A client's answer. Only the first for a pending call in that chat counts, and
   * only from a connection that `canRun` the call's tool (attached, declared it).
   */
  answer(chatId: string, result: ToolResult, canRun: (tool: string) => boolean): ToolAnswer {
    const key = callKey(chatId, result.call_id);
    const call = this.#pending.get(key);
    if (!call) return "unknown_call";
    if (!canRun(call.tool)) return "not_capable";
    this.#settle(key, result);
    return "accepted";
  }

  /** A client left the chat: calls it could have answered wait the grace for another capable one. */
  clientLeft(chatIds: Iterable<string>): void {
    const chats = new Set(chatIds);
    for (const [key, call] of this.#pending) {
      if (!chats.has(call.chatId) || call.grace || this.options.capableClients(call.chatId, call.tool) > 0) continue;
      this.#startGrace(key, call);
    }
  }

  /** No capable client seen: after the grace, the call fails unless one is there again. */
  #startGrace(key: string, call: PendingCall): void {
    if (call.grace) return;
    call.grace = setTimeout(() => {
      this.#whenCapable(key, call, (capable) => {
        if (capable === false) return this.#settle(key, { call_id: call.callId, ok: false, error: TOOL_CALL_FAILED.deviceDisconnected });
        call.grace = undefined;
        this.#recheckLater(key, call);
      });
    }, this.options.disconnectGraceMs);
  }

  /**
   * Clustered: another node's capable client may leave without this node
   * hearing of it, so the call looks again after `recheckMs`; none anywhere then
   * starts the grace. The look is free while a capable client is here (its
   * leaving is heard: clientLeft). Unknown (Redis failed or was slow) is not
   * none: the call is not failed for it, its deadline decides.
   */
  #recheckLater(key: string, call: PendingCall): void {
    const { elsewhere } = this.options;
    if (!elsewhere || call.recheck) return;
    call.recheck = setTimeout(() => {
      call.recheck = undefined;
      this.#whenCapable(key, call, (capable) => (capable === false ? this.#startGrace(key, call) : this.#recheckLater(key, call)));
    }, elsewhere.recheckMs);
  }

  /**
   * `then(capable)` for a still pending call: true with a capable client here
   * (at once, as on a single node, where it is the only answer), else whether
   * one is on another live node, undefined when Redis did not say.
   */
  #whenCapable(key: string, call: PendingCall, then: (capable: boolean | undefined) => void): void {
    if (this.options.capableClients(call.chatId, call.tool) > 0) return then(true);
    const { elsewhere } = this.options;
    if (!elsewhere) return then(false);
    const stillPending = () => this.#pending.get(key) === call;
    void elsewhere.capable(call.chatId, call.tool).then(
      (capable) => stillPending() && then(capable),
      () => stillPending() && then(undefined),
    );
  }

  /** The turn ended: its open calls have nobody left to answer. */
  turnEnded(turnId: string): void {
    for (const [key, call] of this.#pending) if (call.turnId === turnId) this.#settle(key, { call_id: call.callId, ok: false, error: TOOL_CALL_FAILED.turnEnded }, false);
  }

  #settle(key: string, result: ToolResult, tellAgent = true): void {
    const call = this.#pending.get(key);
    if (!call) return;
    this.#pending.delete(key);
    metrics.toolCallSettled(result.ok, result.error);
    clearTimeout(call.deadline);
    clearTimeout(call.grace);
    clearTimeout(call.recheck);
    this.options.hub.publish({ event: "tool_result", chat_id: call.chatId, ...result, turn_id: call.turnId });
    if (tellAgent) call.agent.toolResult?.(call.turnId, result);
  }
}
