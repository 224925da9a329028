/**
 * Device tools: the tools this client can run for agents. Registering one
 * declares it as a capability (on connect, attach and new_chat); a `tool_request`
 * for it runs the handler and answers with one `tool_result` (a thrown error
 * becomes `ok: false`). Replayed requests already answered are not run again.
 */
import type { ChatEvent } from "../protocol/events.ts";

type ToolRequest = Extract<ChatEvent, { event: "tool_request" }>;
export interface ToolCall {
  chat_id: string;
  call_id: string;
  deadline_ms: number;
}
export type ToolHandler = (args: unknown, call: ToolCall) => unknown | Promise<unknown>;

export class Tools {
  readonly #handlers = new Map<string, ToolHandler>();
  /** Calls started or settled: a replay must not run them twice. */
  readonly #seen = new Set<string>();

  constructor(private readonly send: (frame: object) => void) {}

  register(name: string, handler: ToolHandler): void {
    this.#handlers.set(name, handler);
  }

  names(): string[] {
    return [...this.#handlers.keys()];
  }

  /** Sees every chat event: answers requests for registered tools, remembers settled calls. */
  observe(event: ChatEvent): void {
    if (event.event === "tool_result") this.#seen.add(event.call_id);
    if (event.event === "tool_request") void this.#run(event);
  }

  async #run(request: ToolRequest): Promise<void> {
    const handler = this.#handlers.get(request.tool);
    if (!handler || this.#seen.has(request.call_id)) return;
    this.#seen.add(request.call_id);
    const { chat_id, call_id, deadline_ms } = request;
    try {
      const result = await handler(request.args, { chat_id, call_id, deadline_ms });
      this.send({ type: "tool_result", chat_id, call_id, ok: true, result: result ?? null });
    } catch (e) {
      this.send({ type: "tool_result", chat_id, call_id, ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  }
}
