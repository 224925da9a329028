/**
 * A chat's stored events in order, whatever holds them now: the transcript for
 * events the ring has let go of, the ring for the rest (including events not yet
 * flushed). Used to build an agent's conversation history.
 */
import type { Hub } from "./hub.ts";
import { readTranscript } from "./store/transcript.ts";

export async function* chatEvents(hub: Hub, transcriptFile: string, chatId: string, throughSeq: number): AsyncGenerator<string> {
  let next = 1;
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
