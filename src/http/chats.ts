/**
 * Server-side control of chats, under the API credential:
 *   POST /api/chats/{id}/messages  {text, kind?}  publish a proactive message (persisted, fanned out)
 *   POST /api/chats/{id}/stop                     cancel the running turn and clear the queue
 * In a cluster both run on the chat's writer; one that does not answer within
 * cluster_api_reply_ms is answered 504 outcome_unknown (it may still act).
 */
import { Hono } from "hono";
import type { Hub } from "../chat/hub.ts";
import { isSharedStoreError } from "../cluster/cluster.ts";
import { HTTP_NOT_STORED_REASON, HTTP_OUTCOME_UNKNOWN, HTTP_PUBLISH_UNKNOWN_REASON, HTTP_SHARED_STORE_REASON, HTTP_STOP_UNKNOWN_REASON, STORAGE_ERROR } from "../protocol/errors.ts";
import { isChatId } from "../protocol/client.ts";
import type { Runs } from "../runs/runs.ts";
import { refusal } from "./refusal.ts";

/** Clustered only (src/cluster/node.ts): a message to (or a stop of) a chat another node writes is handled there. */
export interface PublishPlacement {
  /** False while another node holds the chat's lease. */
  writableHere(chatId: string): Promise<boolean>;
  /** Published by the chat's writer: its seq, 0 if nothing was stored, undefined if the writer did not answer in time (it may still publish it). */
  publishElsewhere(message: { event: "message"; chat_id: string; text: string; kind?: string }): Promise<number | undefined>;
  /** Stopped by the chat's writer: how many turns, undefined if it did not answer in time. */
  stopElsewhere(chatId: string): Promise<number | undefined>;
}

export interface ChatsDeps {
  hub: Hub;
  runs: Runs;
  maxTextBytes: number;
  placement?: PublishPlacement;
}

export function chatsApp({ hub, runs, maxTextBytes, placement }: ChatsDeps): Hono {
  const app = new Hono();
  /** `here` where the chat is written (always on a single node), else `elsewhere`, handed to the writer. */
  const onWriter = async <T>(chatId: string, here: () => T, elsewhere: (p: PublishPlacement) => Promise<T | undefined>): Promise<T | undefined> =>
    placement && !(await placement.writableHere(chatId)) ? elsewhere(placement) : here();

  app.use("/:id/*", async (c, next) => {
    if (!isChatId(c.req.param("id"))) return refusal(400, "Bad Request", "invalid chat_id");
    await next();
  });

  // Clustered: Redis or PostgreSQL failing while the chat's writer is found is the store's failure, not ours.
  app.onError((error) => {
    if (isSharedStoreError(error)) return refusal(503, STORAGE_ERROR, HTTP_SHARED_STORE_REASON);
    throw error;
  });

  app.post("/:id/messages", async (c) => {
    const body = (await c.req.json().catch(() => undefined)) as { text?: unknown; kind?: unknown } | undefined;
    const text = body?.text;
    if (typeof text !== "string" || text.trim() === "") return refusal(400, "Bad Request", "text must be a non-empty string");
    if (Buffer.byteLength(text) > maxTextBytes) return refusal(413, "Payload Too Large", "text too large");
    if (body?.kind !== undefined && typeof body.kind !== "string") return refusal(400, "Bad Request", "kind must be a string");
    const chat_id = c.req.param("id");
    const message = { event: "message" as const, chat_id, text, ...(body?.kind !== undefined && { kind: body.kind as string }) };
    const seq = await onWriter(chat_id, () => hub.publish(message), (p) => p.publishElsewhere(message));
    // No answer in time is not "not stored": the writer may still publish it, and a blind resend would publish it twice.
    if (seq === undefined) return refusal(504, HTTP_OUTCOME_UNKNOWN, HTTP_PUBLISH_UNKNOWN_REASON);
    if (seq === 0) return refusal(503, STORAGE_ERROR, HTTP_NOT_STORED_REASON);
    return c.json({ chat_id, seq });
  });

  app.post("/:id/stop", async (c) => {
    const chatId = c.req.param("id");
    const stopped = await onWriter(chatId, () => runs.stop(chatId), (p) => p.stopElsewhere(chatId));
    if (stopped === undefined) return refusal(504, HTTP_OUTCOME_UNKNOWN, HTTP_STOP_UNKNOWN_REASON);
    return c.json({ stopped });
  });

  return app;
}
