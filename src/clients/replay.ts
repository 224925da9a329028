/**
 * Resume: send a client every event of a chat after `sinceSeq`, in order, then
 * subscribe it to the live topic, with no gap and no duplicate even while the
 * chat keeps streaming.
 *
 * Older events come from the transcript file (asynchronously, pausing whenever
 * the client's send buffer is full); the few not yet written from its queued batch. The last step (memory
 * tail + subscribe) runs synchronously, so no commit can fall between what was
 * replayed and what arrives live. Only committed events are ever sent: staged
 * ones reach the client through the topic once written.
 */
import type { ChatReader } from "../chat/reader.ts";
import { Hub } from "../chat/hub.ts";
import { metrics } from "../metrics/metrics.ts";

/** The little of a client socket a replay needs. */
export interface ReplayTarget {
  send(frame: string): void;
  subscribe(topic: string): void;
  isOpen(): boolean;
  /** Resolves when the socket's send buffer is below `bytes`, or it closed. */
  drained(bytes: number): Promise<void>;
}

export interface ReplayDeps {
  reader: ChatReader;
  /** Pause sending once this many bytes are queued for the socket. */
  bufferBytes: number;
  /** A stored transcript line as clients may see it (no private part, fresh media URLs). */
  toClient: (line: string) => string;
}

export async function replayThenSubscribe(target: ReplayTarget, chatId: string, sinceSeq: number, deps: ReplayDeps): Promise<void> {
  const { reader } = deps;
  metrics.replayRequested();
  for (let next = sinceSeq + 1; ; ) {
    const tail = reader.tail(chatId, next);
    if (tail) {
      for (const line of tail) target.send(deps.toClient(line));
      metrics.replayed("memory", tail.length);
      target.subscribe(Hub.topicOf(chatId));
      return;
    }
    const through = reader.diskOnlyThrough(chatId);
    for await (const line of reader.read(chatId, { from: next, through, visible: true })) {
      if (!target.isOpen()) return;
      target.send(deps.toClient(line));
      metrics.replayed("disk", 1);
      await target.drained(deps.bufferBytes);
    }
    next = through + 1;
  }
}
