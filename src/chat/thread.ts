/**
 * Folds a chat's event stream into the WebUI's thread (schemaVersion 3 UIMessages,
 * reference §6.3): user lines become user bubbles, each streamed segment one
 * assistant bubble (stream_end.text, when present, is the segment's final text),
 * reasoning attaches to its bubble, progress and tool hints become trace rows,
 * file edits trace rows with fileEdits, and turn_end stamps the latency.
 */
type Event = Record<string, unknown> & { event?: unknown; seq?: unknown; text?: unknown };

export interface UIMessage {
  id: string;
  role: "user" | "assistant" | "tool";
  content: string;
  createdAt: number;
  kind?: "trace";
  reasoning?: string;
  traces?: string[];
  toolEvents?: unknown[];
  fileEdits?: unknown[];
  latencyMs?: number;
  /** Signed URLs of attached media. */
  media?: unknown[];
}

const TRACE_KINDS = new Set(["tool_hint", "progress"]);

export function foldThread(events: Iterable<Event>, now = Date.now()): UIMessage[] {
  const messages: UIMessage[] = [];
  let open: UIMessage | undefined;
  let turnStart = 0;
  const push = (m: Omit<UIMessage, "createdAt">) => {
    const message = { ...m, createdAt: now + messages.length };
    messages.push(message);
    return message;
  };
  const bubble = (seq: unknown) => (open ??= push({ id: `a-${seq}`, role: "assistant", content: "" }));
  const text = (e: Event) => (typeof e.text === "string" ? e.text : "");

  for (const e of events) {
    switch (e.event) {
      case "user":
        open = undefined;
        turnStart = messages.length;
        push({ id: `u-${e.seq}`, role: "user", content: text(e), ...(Array.isArray(e.media_urls) && { media: e.media_urls }) });
        break;
      case "delta":
        bubble(e.seq).content += text(e);
        break;
      case "stream_end":
        if (typeof e.text === "string") bubble(e.seq).content = e.text;
        open = undefined;
        break;
      case "reasoning_delta":
        bubble(e.seq).reasoning = (open!.reasoning ?? "") + text(e);
        break;
      case "message":
        open = undefined;
        if (e.kind === "reasoning") bubble(e.seq).reasoning = text(e);
        else if (typeof e.kind === "string" && TRACE_KINDS.has(e.kind)) {
          push({ id: `t-${e.seq}`, role: "tool", kind: "trace", content: "", traces: text(e) ? [text(e)] : [], toolEvents: (e.tool_events as unknown[]) ?? [] });
        } else push({ id: `a-${e.seq}`, role: "assistant", content: text(e), ...(Array.isArray(e.media_urls) && { media: e.media_urls }) });
        break;
      case "file_edit":
        open = undefined;
        push({ id: `f-${e.seq}`, role: "tool", kind: "trace", content: "", traces: [], fileEdits: (e.edits as unknown[]) ?? [] });
        break;
      case "turn_end": {
        open = undefined;
        const last = messages.slice(turnStart).findLast((m) => m.role === "assistant");
        if (last && typeof e.latency_ms === "number") last.latencyMs = e.latency_ms;
        break;
      }
    }
  }
  return messages;
}
