/**
 * What the gateway keeps on each client WebSocket: who it is, how it came in,
 * which chats it follows, and the tools it can run. Its own module so the
 * lifecycle (session.ts), the chat actions and the socket watchers share the
 * type without importing one another.
 */
import type { ServerWebSocket } from "bun";

export interface ClientData {
  role: "client";
  clientId: string;
  /** Peer IP for TCP (a trusted proxy's client); "" for unix-socket peers. */
  remote: string;
  /** Has a local user's trust (auth/peer.ts): may set workspace controls. */
  local: boolean;
  /** The listener the connection came in on. */
  transport: "tcp" | "unix";
  /** The chat legacy (untyped) frames go to. */
  defaultChatId: string;
  chats: Set<string>;
  /** Chats being replayed to this socket (attach with since_seq) and not yet live. */
  replaying: Set<string>;
  /** Replays waiting for the socket to drain. */
  drainWaiters: (() => void)[];
  /** Tools this device can run for agents (from the URL, attach or new_chat). */
  capabilities: Set<string>;
}

export type ClientSocket = ServerWebSocket<ClientData>;
