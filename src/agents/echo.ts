/**
 * The built-in echo agent: streams the user's message back in chunks. It is the
 * demo, the test agent and the benchmark load, so its size and pace are config.
 */
import type { Agent, Emit, TurnRequest, TurnResult } from "./agent.ts";

export interface EchoOptions {
  chunkSize: number;
  repeat: number;
  delayMs: number;
}

/** Without pacing, yield to the event loop this often so sockets flush and /stop is read. */
const CHUNKS_PER_YIELD = 64;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The reply: the message repeated `repeat` times, cut into chunks of `size` characters. */
interface Reply {
  text: string;
  size: number;
  /** Chunks per repetition. */
  chunks: number;
}

/**
 * Emits chunks `from` to `to` (exclusive, counted across repetitions), checking for
 * a cancel before each; returns where it stopped. The per-delta loop lives in this
 * plain function rather than in the async runTurn: JSC then optimizes this small
 * function, not the async function's whole state machine, during the first stream.
 */
function emitChunks(reply: Reply, from: number, to: number, emit: Emit, signal: AbortSignal): number {
  const { text, size, chunks } = reply;
  for (let n = from; n < to; n++) {
    if (signal.aborted) return n;
    const i = n % chunks;
    emit({ type: "delta", text: text.slice(i * size, (i + 1) * size) });
  }
  return to;
}

export function createEchoAgent(options: EchoOptions): Agent {
  return {
    name: "echo",
    async runTurn(turn: TurnRequest, emit: Emit, signal: AbortSignal): Promise<TurnResult> {
      const text = turn.content === "" ? "(empty message)" : turn.content;
      const reply: Reply = { text, size: options.chunkSize, chunks: Math.ceil(text.length / options.chunkSize) };
      const total = reply.chunks * options.repeat;
      // Paced, a chunk per delay; unpaced, a burst up to the next yield.
      const burst = options.delayMs > 0 ? 1 : CHUNKS_PER_YIELD;
      for (let sent = 0; sent < total; ) {
        const end = Math.min(total, sent + burst);
        sent = emitChunks(reply, sent, end, emit, signal);
        if (sent < end) return { status: "cancelled" };
        if (options.delayMs > 0) await Bun.sleep(options.delayMs);
        else if (sent % CHUNKS_PER_YIELD === 0) await yieldToLoop();
      }
      if (signal.aborted) return { status: "cancelled" };
      emit({ type: "stream_end" });
      return { status: "done" };
    },
  };
}
