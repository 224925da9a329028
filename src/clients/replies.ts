/**
 * Frames addressed to one socket rather than to a chat's subscribers: replies
 * (ready, attached, acks, pong) and error events, which carry chat_id when known.
 */
import type { EnvelopeError } from "../protocol/client.ts";
import type { Reply } from "../protocol/events.ts";

interface FrameSink {
  send(data: string): unknown;
}

export function reply(ws: FrameSink, frame: Reply): void {
  ws.send(JSON.stringify(frame));
}

export function replyError(ws: FrameSink, error: EnvelopeError, chatId?: string): void {
  reply(ws, { event: "error", ...error, ...(chatId !== undefined && { chat_id: chatId }) });
}
