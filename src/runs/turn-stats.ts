/**
 * What the turn-end log line reports about a turn's stream: time to the first
 * token and the number of deltas. Counted on the way through `emit` (an
 * increment per frame, nothing logged per frame).
 */
import type { Emit } from "../agents/agent.ts";
import type { AgentTurnFrame } from "../protocol/agent.ts";

const TOKEN_FRAMES = new Set<AgentTurnFrame["type"]>(["delta", "reasoning_delta", "message"]);

export class TurnStats {
  deltas = 0;
  #firstTokenMs: number | undefined;

  constructor(
    private readonly startedMs: number,
    private readonly inner: Emit,
  ) {}

  readonly emit: Emit = (frame) => {
    if (frame.type === "delta") this.deltas++;
    if (this.#firstTokenMs === undefined && TOKEN_FRAMES.has(frame.type)) this.#firstTokenMs = Date.now();
    this.inner(frame);
  };

  /** Fields for the turn-end line: ttft_ms is absent when nothing was said. */
  fields(): { ttft_ms?: number; deltas: number } {
    return { ttft_ms: this.#firstTokenMs === undefined ? undefined : this.#firstTokenMs - this.startedMs, deltas: this.deltas };
  }
}
