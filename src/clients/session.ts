/**
 * One client connection's lifecycle: the handshake's follow-up (`ready`, default
 * chat), frame decoding and envelope dispatch to the chat actions
 * (clients/chat-actions.ts), and what leaving takes with it.
 *
 * Errors are answered with an `error` frame (carrying chat_id when known) and
 * never close the socket.
 */
import { randomBytes } from "node:crypto";
import type { WebSocketHandler } from "bun";
import { MAX_CLIENT_ID_LENGTH } from "../auth/handshake.ts";
import { EVERYONE_TOPIC } from "../chat/hub.ts";
import { parseInbound } from "../protocol/client.ts";
import { type ChatActionDeps, ChatActions, type ForwardedFrame, MAX_CAPABILITIES, type MessageSender, type QueuedTurn } from "./chat-actions.ts";
import type { ClientData, ClientSocket } from "./client-socket.ts";
import { logConnectionClose, logConnectionOpen } from "./connection-log.ts";
import { reply, replyError } from "./replies.ts";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

const parseCapabilities = (raw: string | null) =>
  (raw ?? "")
    .split(",")
    .map((c) => c.trim())
    .filter((c) => c !== "" && c.length <= 64)
    .slice(0, MAX_CAPABILITIES);

/** `identity`: the credential's subject (a JWT's sub), which overrides the client_id the URL claims. */
export function clientConnectionData(url: URL, peer: { remote: string; local: boolean; viaUnixSocket: boolean }, identity?: string): ClientData {
  const given = (url.searchParams.get("client_id") ?? "").trim().slice(0, MAX_CLIENT_ID_LENGTH);
  return {
    role: "client",
    capabilities: new Set(parseCapabilities(url.searchParams.get("capabilities"))),
    clientId: identity ?? (given || `anon-${randomBytes(6).toString("hex")}`),
    remote: peer.remote,
    local: peer.local,
    transport: peer.viaUnixSocket ? "unix" : "tcp",
    defaultChatId: crypto.randomUUID(),
    chats: new Set(),
    replaying: new Set(),
    drainWaiters: [],
  };
}

/** Clustered: where this node's count of capable clients per chat and tool goes (cluster/devices.ts). */
export interface DeviceReports {
  report(chatId: string, tool: string, count: number): void;
}

export class ClientSessions {
  readonly #open = new Set<ClientSocket>();
  readonly #actions: ChatActions;

  constructor(private readonly deps: ChatActionDeps & { devices?: DeviceReports }) {
    const { devices } = deps;
    this.#actions = new ChatActions(devices ? { ...deps, devicesChanged: (ws) => this.#reportDevices(devices, ws) } : deps);
  }

  readonly handler: Required<Pick<WebSocketHandler<ClientData>, "open" | "message" | "drain" | "close">> = {
    open: (ws) => this.#onOpen(ws),
    message: (ws, raw) => this.#onFrame(ws, raw),
    drain: (ws) => this.#wakeReplays(ws),
    close: (ws, code) => {
      logConnectionClose(this.deps.log, ws, code);
      this.#open.delete(ws);
      this.#wakeReplays(ws);
      this.deps.toolCalls.clientLeft(ws.data.chats);
      if (this.deps.devices) this.#reportDevices(this.deps.devices, ws);
    },
  };

  /** Clustered: a frame another node received for a chat this node writes. */
  forwarded(sender: MessageSender, frame: ForwardedFrame): void {
    this.#actions.forwarded(sender, frame);
  }

  /** Clustered, after a takeover: a message the chat's dead writer had queued runs here. */
  runQueued(chatId: string, message: QueuedTurn): void {
    this.#actions.runQueued(chatId, message);
  }

  /** Open connections in the chat that declared the tool. */
  capableClients(chatId: string, tool: string): number {
    let n = 0;
    for (const ws of this.#open) if (ws.data.chats.has(chatId) && ws.data.capabilities.has(tool)) n++;
    return n;
  }

  /** Clustered: this node's counts for the socket's chats and tools, after it joined, declared or left. */
  #reportDevices(devices: DeviceReports, ws: ClientSocket): void {
    for (const chatId of ws.data.chats) for (const tool of ws.data.capabilities) devices.report(chatId, tool, this.capableClients(chatId, tool));
  }

  /** Shutdown: close every client connection with the given code (1001: going away). */
  closeAll(code: number, reason: string): void {
    for (const ws of this.#open) ws.close(code, reason);
  }

  #onOpen(ws: ClientSocket): void {
    this.#open.add(ws);
    logConnectionOpen(this.deps.log, ws);
    reply(ws, { event: "ready", chat_id: ws.data.defaultChatId, client_id: ws.data.clientId });
    ws.subscribe(EVERYONE_TOPIC);
    this.#actions.join(ws, ws.data.defaultChatId);
    this.#actions.hydrate(ws, ws.data.defaultChatId);
  }

  #onFrame(ws: ClientSocket, raw: string | Buffer): void {
    let text: string;
    try {
      text = typeof raw === "string" ? raw : strictUtf8.decode(raw);
    } catch {
      this.deps.log.debug("ignored a binary frame that is not UTF-8", { client_id: ws.data.clientId });
      return;
    }
    const inbound = parseInbound(text);
    const actions = this.#actions;
    switch (inbound.kind) {
      case "ignored":
        return;
      case "legacy":
        return actions.submit(ws, ws.data.defaultChatId, inbound.content, {});
      case "invalid":
        return replyError(ws, inbound.error, inbound.chat_id);
      case "envelope": {
        const env = inbound.envelope;
        switch (env.type) {
          case "new_chat":
            return actions.newChat(ws, env);
          case "attach":
            return actions.attach(ws, env);
          case "message":
            return actions.message(ws, env);
          case "set_workspace_scope":
            return actions.setWorkspaceScope(ws, env);
          case "stop":
            return actions.stopFrame(ws, env.chat_id);
          case "tool_result":
            return actions.toolResult(ws, env);
          case "ping":
            return reply(ws, { event: "pong" });
        }
      }
    }
  }

  /** Called on every drain of every client socket: costs nothing (no splice, no array) unless a replay waits. */
  #wakeReplays(ws: ClientSocket): void {
    const waiters = ws.data.drainWaiters;
    if (waiters.length === 0) return;
    ws.data.drainWaiters = [];
    for (const wake of waiters) wake();
  }
}
