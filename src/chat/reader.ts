/**
 * The one reader of a chat's stream, whatever holds each part now: the
 * transcript for events the ring has let go of, the ring for recent committed
 * events, and (for the gateway's own reads, not clients) the events staged for
 * the next commit. Replay, the sessions API, LLM history and the turn
 * publisher's read-back all go through it.
 */
import { readTranscript } from "../store/transcript.ts";
import type { Hub } from "./hub.ts";

export interface ReadRange {
  /** First seq wanted (default 1). */
  from?: number;
  /** Last seq wanted (default: everything). */
  through?: number;
  /** Only what clients may have seen (committed events); the gateway's own reads also get staged ones. */
  visible?: boolean;
}

export class ChatReader {
  constructor(
    private readonly hub: Hub,
    private readonly transcriptFile: (chatId: string) => string,
  ) {}

  /** Events with seq in [from, through], oldest first, each a serialized frame. */
  async *read(chatId: string, { from = 1, through = Number.POSITIVE_INFINITY, visible = false }: ReadRange = {}): AsyncGenerator<string> {
    for (let next = from; next <= through; ) {
      const tail = this.tail(chatId, next, through, visible);
      if (tail) {
        yield* tail;
        return;
      }
      const upTo = Math.min(this.diskOnlyThrough(chatId), through);
      for await (const { line } of readTranscript(this.transcriptFile(chatId), next, upTo)) yield line;
      next = upTo + 1;
    }
  }

  /** Events ≤ this are read from the transcript; above it from memory. */
  diskOnlyThrough(chatId: string): number {
    return this.hub.view(chatId)?.ring.diskOnlyThrough ?? this.hub.latestSeq(chatId);
  }

  /**
   * Synchronously, the frames from `from` on when memory holds all of them (a
   * copy: the ring may compact while a consumer awaits); undefined when part of
   * them must come from the transcript.
   */
  tail(chatId: string, from: number, through = Number.POSITIVE_INFINITY, visible = true): string[] | undefined {
    const chat = this.hub.view(chatId);
    if (!chat) return from > this.hub.latestSeq(chatId) ? [] : undefined;
    if (from <= chat.ring.diskOnlyThrough) return undefined;
    const frames = [...chat.ring.from(from, through)];
    if (!visible) for (const s of chat.staged) if (s.seq >= from && s.seq <= through) frames.push(s.frame);
    return frames;
  }
}
