/**
 * The built-in echo agent: streams the user's message back in chunks. It is the
 * demo, the test agent and the benchmark load, so its size and pace are config.
 */
import type { Agent, TurnRequest, TurnResult } from "./agent.ts";
import type { AgentTurnFrame } from "../protocol/agent.ts";

export interface EchoOptions {
  chunkSize: number;
  repeat: number;
  delayMs: number;
}

/** Without pacing, yield to the event loop this often so sockets flush and /stop is read. */
const CHUNKS_PER_YIELD = 64;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export function createEchoAgent(options: EchoOptions): Agent {
  return {
    name: "echo",
    async runTurn(turn: TurnRequest, emit: (frame: AgentTurnFrame) => void, signal: AbortSignal): Promise<TurnResult> {
      const text = turn.content === "" ? "(empty message)" : turn.content;
      const chunks = Math.ceil(text.length / options.chunkSize);
      let sent = 0;
      for (let r = 0; r < options.repeat; r++) {
        for (let i = 0; i < chunks; i++) {
          if (signal.aborted) return { status: "cancelled" };
          emit({ type: "delta", text: text.slice(i * options.chunkSize, (i + 1) * options.chunkSize) });
          sent++;
          if (options.delayMs > 0) await Bun.sleep(options.delayMs);
          else if (sent % CHUNKS_PER_YIELD === 0) await yieldToLoop();
        }
      }
      if (signal.aborted) return { status: "cancelled" };
      emit({ type: "stream_end" });
      return { status: "done" };
    },
  };
}
