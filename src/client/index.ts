/**
 * agentgate/client: connect to an agentgate gateway from a browser, Bun or Node ≥ 22.
 *
 *   const client = connect({ url: "ws://127.0.0.1:8765/", getToken: bootstrapToken({ baseUrl: "http://127.0.0.1:8765" }) });
 *   const chat = await client.newChat();
 *   chat.send("hello");
 *   const turn = await chat.nextTurn(); // turn.text
 *
 * Reconnects by itself (fresh token each time), resumes every chat after the last
 * seq it saw, drops duplicates and reports gaps. No runtime dependencies.
 */
import { Client } from "./client.ts";
import type { ConnectionOptions } from "./connection.ts";

export function connect(options: ConnectionOptions): Client {
  return new Client(options);
}

export { Client, type NewChatOptions } from "./client.ts";
export { Chat, type SendOptions } from "./chat.ts";
export type { ConnectionOptions } from "./connection.ts";
export { backoffDelay, type BackoffOptions, DEFAULT_BACKOFF } from "./backoff.ts";
export { CLOSE_POLICIES, type ClosePolicy } from "./close-codes.ts";
export { AuthError, bootstrap, bootstrapToken, GatewayApi, HttpError, type Bootstrap, type HttpTarget, type SessionRow, type UploadedMedia } from "./http.ts";
export { foldTurn } from "./turns.ts";
export type { ToolCall, ToolHandler } from "./tools.ts";
export type * from "./types.ts";
