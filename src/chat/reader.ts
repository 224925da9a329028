/**
 * The one reader of a chat's stream, whatever holds each part now: the
 * transcript file for events written to it, the transcript's queued batch for
 * committed events not yet written, and (for the gateway's own reads, not
 * clients) the events staged for the next commit. Replay, the sessions API, LLM
 * history and the turn publisher's read-back all go through it. Every part
 * yields stored lines (with an event's private part; runs expanded to the frames
 * clients saw), so a consumer treats them alike wherever they came from.
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

/** The chat's committed events in [from, through] still queued for its transcript file, as stored lines. */
export type UnwrittenLines = (chatId: string, from: number, through: number) => string[];

export class ChatReader {
  constructor(
    private readonly hub: Hub,
    private readonly transcriptFile: (chatId: string) => string,
    private readonly unwritten: UnwrittenLines,
  ) {}

  /** Events with seq in [from, through], oldest first, each a stored line. */
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

  /** A cheap check before `range`: this node has seq `first` and reaches `last` (a node that began mirroring later holds no early seqs). */
  async holds(chatId: string, first: number, last: number): Promise<boolean> {
    if (this.hub.latestSeq(chatId) < last) return false;
    for await (const line of this.read(chatId, { from: first, through: first, visible: true })) return (JSON.parse(line) as { seq?: number }).seq === first;
    return false;
  }

  /** Every committed event in [first, last] as a client line (`toClient`), or undefined unless this node holds all of them. */
  async range(chatId: string, first: number, last: number, toClient: (line: string) => string): Promise<string[] | undefined> {
    if (this.hub.latestSeq(chatId) < last) return undefined;
    const frames: string[] = [];
    for await (const line of this.read(chatId, { from: first, through: last, visible: true })) frames.push(toClient(line));
    return frames.length === last - first + 1 ? frames : undefined;
  }

  /** Events ≤ this are read from the transcript file; above it from memory. */
  diskOnlyThrough(chatId: string): number {
    return this.hub.view(chatId)?.flushedThrough ?? this.hub.latestSeq(chatId);
  }

  /**
   * Synchronously, the stored lines from `from` on when memory holds all of them
   * (a fresh array); undefined when part of them must come from the file.
   */
  tail(chatId: string, from: number, through = Number.POSITIVE_INFINITY, visible = true): string[] | undefined {
    const chat = this.hub.view(chatId);
    if (!chat) return from > this.hub.latestSeq(chatId) ? [] : undefined;
    if (from <= chat.flushedThrough) return undefined;
    const lines = from > chat.durableSeq ? [] : this.unwritten(chatId, from, Math.min(through, chat.durableSeq));
    if (!visible) for (const s of chat.staged) if (s.seq >= from && s.seq <= through) lines.push(s.stored);
    return lines;
  }
}
