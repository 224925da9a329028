/**
 * An OpenAI-compatible streaming agent: POST {base_url}/chat/completions with
 * stream:true, for any server that speaks that API (Ollama, llama.cpp, vLLM,
 * hosted). The conversation is rebuilt from the chat's own event stream each
 * turn. `reasoning_content` (or `reasoning`) streams as reasoning events;
 * tool-call chunks are shown as a tool_hint message with tool_events (they are
 * not executed here). HTTP and stream errors end the turn with status error,
 * whose text the run layer shows as a message.
 */
import { createParser } from "eventsource-parser";
import type { Agent, Emit, TurnRequest, TurnResult } from "./agent.ts";

export interface OpenAISpec {
  base_url: string;
  model: string;
  api_key_env: string;
  system_prompt?: string;
  timeout_ms: number;
}

export interface LlmMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** The conversation up to and including the turn's own user message. */
export type HistoryReader = (chatId: string, throughSeq: number) => Promise<LlmMessage[]>;

interface ToolCallDraft {
  id: string;
  name: string;
  arguments: string;
}

interface StreamState {
  reasoning: boolean;
  content: boolean;
  tools: Map<number, ToolCallDraft>;
}

type Chunk = {
  error?: { message?: string } | string;
  choices?: { delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null; tool_calls?: ToolCallChunk[] } }[];
};
type ToolCallChunk = { index?: number; id?: string; function?: { name?: string; arguments?: string } };

export function createOpenAIAgent(name: string, spec: OpenAISpec, readHistory: HistoryReader, env: Record<string, string | undefined> = process.env): Agent {
  const url = `${spec.base_url.replace(/\/+$/, "")}/chat/completions`;
  return {
    name,
    async runTurn(turn: TurnRequest, emit: Emit, signal: AbortSignal): Promise<TurnResult> {
      const history = await readHistory(turn.chat_id, turn.user_seq);
      const messages = spec.system_prompt ? [{ role: "system" as const, content: spec.system_prompt }, ...history] : history;
      const key = env[spec.api_key_env];
      let response: Response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "text/event-stream", ...(key && { authorization: `Bearer ${key}` }) },
          body: JSON.stringify({ model: spec.model, messages, stream: true }),
          signal: AbortSignal.any([signal, AbortSignal.timeout(spec.timeout_ms)]),
        });
      } catch (e) {
        return signal.aborted ? { status: "cancelled" } : { status: "error", error: `request failed: ${(e as Error).message}` };
      }
      if (!response.ok || !response.body) {
        return { status: "error", error: `HTTP ${response.status}: ${(await response.text()).slice(0, 500)}` };
      }
      return streamCompletion(response.body, emit, signal);
    },
  };
}

async function streamCompletion(body: ReadableStream<Uint8Array>, emit: Emit, signal: AbortSignal): Promise<TurnResult> {
  const state: StreamState = { reasoning: false, content: false, tools: new Map() };
  let outcome: TurnResult | undefined;
  const parser = createParser({ onEvent: (event) => void (outcome ??= applyEvent(event.data, state, emit)) });
  const decoder = new TextDecoder();
  try {
    for await (const bytes of body) {
      parser.feed(decoder.decode(bytes, { stream: true }));
      if (outcome) return outcome;
    }
  } catch (e) {
    return signal.aborted ? { status: "cancelled" } : { status: "error", error: `stream failed: ${(e as Error).message}` };
  }
  return signal.aborted ? { status: "cancelled" } : finish(state, emit);
}

/** One SSE event's data: `[DONE]` ends the turn; JSON that is not a chunk object (keep-alive text, garbage) is skipped. */
function applyEvent(data: string, state: StreamState, emit: Emit): TurnResult | undefined {
  if (data.trim() === "[DONE]") return finish(state, emit);
  let chunk: unknown;
  try {
    chunk = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (typeof chunk !== "object" || chunk === null || Array.isArray(chunk)) return undefined;
  const error = applyChunk(chunk as Chunk, state, emit);
  return error === undefined ? undefined : { status: "error", error };
}

const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);

/** Applies one SSE chunk; returns an error text if the server reported one. Fields of the wrong type are ignored. */
function applyChunk(chunk: Chunk, state: StreamState, emit: Emit): string | undefined {
  if (chunk.error) return typeof chunk.error === "string" ? chunk.error : (text(chunk.error.message) ?? "stream error");
  const delta = Array.isArray(chunk.choices) ? chunk.choices[0]?.delta : undefined;
  if (typeof delta !== "object" || delta === null) return undefined;
  const reasoning = text(delta.reasoning_content) ?? text(delta.reasoning);
  if (reasoning) {
    state.reasoning = true;
    emit({ type: "reasoning_delta", text: reasoning });
  }
  const content = text(delta.content);
  if (content) {
    if (state.reasoning) emit({ type: "reasoning_end" });
    state.reasoning = false;
    state.content = true;
    emit({ type: "delta", text: content });
  }
  for (const call of Array.isArray(delta.tool_calls) ? delta.tool_calls : []) {
    const index = typeof call?.index === "number" ? call.index : 0;
    const draft = state.tools.get(index) ?? { id: "", name: "", arguments: "" };
    draft.id ||= text(call?.id) ?? "";
    draft.name += text(call?.function?.name) ?? "";
    draft.arguments += text(call?.function?.arguments) ?? "";
    state.tools.set(index, draft);
  }
  return undefined;
}

function finish(state: StreamState, emit: Emit): TurnResult {
  if (state.reasoning) emit({ type: "reasoning_end" });
  if (state.content) emit({ type: "stream_end" });
  if (state.tools.size > 0) {
    const calls = [...state.tools.values()];
    emit({
      type: "message",
      kind: "tool_hint",
      text: calls.map((c) => `${c.name}(${c.arguments})`).join("\n"),
      tool_events: calls.map((c) => ({ version: 1, phase: "start", call_id: c.id, name: c.name, arguments: c.arguments, result: null, error: null, files: [], embeds: [] })),
    });
  }
  return { status: "done" };
}
