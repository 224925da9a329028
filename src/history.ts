/**
 * A chat's stored events in order, whatever holds them now: the transcript for
 * events the ring has let go of, the ring for the rest (including events not yet
 * flushed), and the conversation an LLM agent is given.
 */
import type { ChatMessage } from "./agents/openai.ts";
import type { Hub } from "./hub.ts";
import { foldThread } from "./store/thread.ts";
import { readTranscript } from "./store/transcript.ts";

export async function* chatEvents(hub: Hub, transcriptFile: string, chatId: string, throughSeq: number, fromSeq = 1): AsyncGenerator<string> {
  let next = fromSeq;
  for (;;) {
    const stream = hub.stream(chatId);
    if (next > stream.ring.diskOnlyThrough) {
      // Copied first: the ring may compact while the consumer awaits between frames.
      yield* [...stream.ring.from(next, throughSeq)];
      return;
    }
    const through = Math.min(stream.ring.diskOnlyThrough, throughSeq);
    for await (const { line } of readTranscript(transcriptFile, next, through)) yield line;
    if (through === throughSeq) return;
    next = through + 1;
  }
}

/** The chat as a conversation (user and assistant turns) through `throughSeq`, for an LLM agent. */
export async function conversation(hub: Hub, transcriptFile: string, chatId: string, throughSeq: number): Promise<ChatMessage[]> {
  const events = [];
  for await (const line of chatEvents(hub, transcriptFile, chatId, throughSeq)) events.push(JSON.parse(line));
  return foldThread(events).flatMap((m) => (m.role !== "tool" && m.content !== "" ? [{ role: m.role, content: m.content }] : []));
}
