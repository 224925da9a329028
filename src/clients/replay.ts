/**
 * Resume: send a client every event of a chat after `sinceSeq`, in order, then
 * subscribe it to the live topic, with no gap and no duplicate even while the
 * chat keeps streaming.
 *
 * Events at or below the ring's `diskOnlyThrough` are read from the transcript
 * (asynchronously, pausing whenever the client's send buffer is full); the rest
 * come from the ring. The last step (ring tail + subscribe) runs synchronously,
 * so no publish can fall between what was replayed and what arrives live.
 * The ring may move on while the file is read; then the loop reads the file again
 * from where it stopped.
 */
import type { Hub } from "../hub.ts";
import { readTranscript } from "../store/transcript.ts";
import type { ClientSocket } from "./session.ts";

export interface ReplayDeps {
  hub: Hub;
  transcriptFile: (chatId: string) => string;
  /** Pause sending once this many bytes are queued for the socket. */
  bufferBytes: number;
  /** A stored transcript line as clients may see it (no private part, fresh media URLs). */
  toClient: (line: string) => string;
}

const SOCKET_OPEN = 1;

/** Resolves when the socket drained below the buffer limit, or closed. */
function drained(ws: ClientSocket, bufferBytes: number): Promise<void> {
  if (ws.getBufferedAmount() < bufferBytes) return Promise.resolve();
  return new Promise((resolve) => ws.data.drainWaiters.push(resolve));
}

export async function replayThenSubscribe(ws: ClientSocket, chatId: string, sinceSeq: number, deps: ReplayDeps): Promise<void> {
  let next = sinceSeq + 1;
  for (;;) {
    const stream = deps.hub.stream(chatId);
    if (next > stream.ring.diskOnlyThrough) {
      for (const frame of stream.ring.from(next)) ws.send(frame);
      ws.subscribe(stream.topic);
      return;
    }
    const through = stream.ring.diskOnlyThrough;
    for await (const { line } of readTranscript(deps.transcriptFile(chatId), next, through)) {
      if (ws.readyState !== SOCKET_OPEN) return;
      ws.send(deps.toClient(line));
      await drained(ws, deps.bufferBytes);
    }
    next = through + 1;
  }
}
