/**
 * An agent on the far side of a frame transport (a child's stdio, a WebSocket).
 * Tracks the turns in flight by turn_id, validates every frame (a bad one is
 * logged and answered with an error frame; it never reaches clients), routes turn
 * frames to their turn, and frames outside turns to the gateway's AgentEvents.
 * A cancelled turn the agent does not end within the grace is ended here as
 * cancelled, so an unresponsive agent cannot hold a chat. A turn stopped while
 * it still waits for the agent to become reachable ends as cancelled at once.
 */
import type { Logger } from "../log.ts";
import { type AgentFrame, type GatewayToAgent, parseAgentFrame, type ToolResult } from "../protocol/agent.ts";
import { AGENT_UNAVAILABLE, FRAME_NOT_HANDLED, INTERNAL_ERROR, INVALID_FRAME, UNKNOWN_TURN_ID } from "../protocol/errors.ts";
import type { Agent, AgentEvents, Emit, TurnRequest, TurnResult } from "./agent.ts";

export interface FrameTransport {
  /** Resolves once the agent can take frames (started, connected, said hello); rejects with a reason, or "cancelled" when `signal` aborts. */
  ready(signal: AbortSignal): Promise<void>;
  /** Sends one frame; false when the agent is not reachable right now. */
  send(frame: GatewayToAgent): boolean;
}

interface OpenTurn {
  emit: Emit;
  resolve: (result: TurnResult) => void;
  /** Armed by a cancel: ends the turn if the agent does not. */
  graceTimer?: Timer;
}

export class FramedAgent implements Agent {
  readonly #turns = new Map<string, OpenTurn>();
  transport: FrameTransport | undefined;

  constructor(
    readonly name: string,
    private readonly events: AgentEvents,
    protected readonly log: Logger,
    private readonly cancelGraceMs: number,
  ) {}

  async runTurn(turn: TurnRequest, emit: Emit, signal: AbortSignal): Promise<TurnResult> {
    try {
      await this.transport!.ready(signal);
    } catch (e) {
      return signal.aborted ? { status: "cancelled" } : { status: "error", error: e instanceof Error ? e.message : String(e) };
    }
    const open: OpenTurn = { emit, resolve: () => {} };
    const ended = new Promise<TurnResult>((resolve) => (open.resolve = resolve));
    this.#turns.set(turn.turn_id, open);
    const onAbort = () => {
      this.transport!.send({ type: "cancel", turn_id: turn.turn_id });
      open.graceTimer = setTimeout(() => this.#end(turn.turn_id, { status: "cancelled" }), this.cancelGraceMs);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const { turn_id, chat_id, content, media, metadata } = turn;
    if (!this.transport!.send({ type: "turn", turn_id, chat_id, content, media, metadata })) {
      this.#end(turn_id, { status: "error", error: AGENT_UNAVAILABLE });
    }
    return ended;
  }

  toolResult(turnId: string, result: ToolResult): void {
    this.transport?.send({ type: "tool_result", turn_id: turnId, ...result });
  }

  /** Ends every open turn (the agent died or did not come back in time). */
  failOpenTurns(error: string): void {
    for (const turnId of [...this.#turns.keys()]) this.#end(turnId, { status: "error", error });
  }

  get openTurns(): number {
    return this.#turns.size;
  }

  /**
   * One frame from the agent, as text. `hello` is the transport's business and is
   * returned to it. A failure while handling it (e.g. the store refusing a write)
   * is logged and answered with an error frame; the agent and the gateway stay up.
   */
  receive(text: string): AgentFrame | undefined {
    try {
      return this.#route(text);
    } catch (e) {
      this.log.error("handling an agent frame failed", { agent: this.name, error: e instanceof Error ? e.message : String(e) });
      this.transport?.send({ type: "error", detail: INTERNAL_ERROR, reason: FRAME_NOT_HANDLED });
      return undefined;
    }
  }

  #route(text: string): AgentFrame | undefined {
    const parsed = parseAgentFrame(text);
    if (!parsed.ok) return void this.#reject(INVALID_FRAME, parsed.reason);
    const frame = parsed.frame;
    switch (frame.type) {
      case "hello":
        return frame;
      case "turn_end":
        if (!this.#turns.has(frame.turn_id)) return void this.#reject(UNKNOWN_TURN_ID, frame.turn_id);
        this.#end(frame.turn_id, frame.error === undefined ? { status: frame.status } : { status: frame.status, error: frame.error });
        return;
      case "session_update":
        this.events.sessionUpdate(frame.chat_id, frame.title);
        return;
      case "model":
        this.events.model(frame.model_name, frame.model_preset);
        return;
      case "message":
        if (frame.turn_id === undefined) {
          if (frame.chat_id === undefined) return void this.#reject(INVALID_FRAME, "message needs turn_id or chat_id");
          const { type: _t, chat_id, turn_id: _u, ...fields } = frame;
          this.events.proactiveMessage(chat_id, fields);
          return;
        }
    }
    if (frame.turn_id === undefined) return void this.#reject(INVALID_FRAME, `${frame.type} needs turn_id`);
    const turn = this.#turns.get(frame.turn_id);
    if (!turn) return void this.#reject(UNKNOWN_TURN_ID, frame.turn_id);
    turn.emit(frame);
  }

  #end(turnId: string, result: TurnResult): void {
    const turn = this.#turns.get(turnId);
    if (!turn) return;
    this.#turns.delete(turnId);
    clearTimeout(turn.graceTimer);
    turn.resolve(result);
  }

  #reject(detail: string, reason: string): void {
    this.log.warn("agent sent a bad frame", { agent: this.name, detail, reason });
    this.transport?.send({ type: "error", detail, reason });
  }
}
