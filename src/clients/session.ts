/**
 * One client connection: the handshake's follow-up (`ready`, default chat),
 * envelope dispatch, chat subscriptions and hydration. Replies to this socket go
 * straight to it; everything that belongs to a chat goes through the hub so every
 * subscriber, on every listener, sees one ordered stream.
 *
 * Errors are answered with an `error` frame (carrying chat_id when known) and
 * never close the socket.
 */
import { randomBytes } from "node:crypto";
import type { ServerWebSocket, WebSocketHandler } from "bun";
import { MAX_CLIENT_ID_LENGTH } from "../auth/handshake.ts";
import { EVERYONE_TOPIC, Hub } from "../chat/hub.ts";
import type { Logger } from "../log.ts";
import { type Attach, type EnvelopeError, type Message, type NewChat, parseInbound, type SetWorkspaceScope, type ToolResultEnvelope } from "../protocol/client.ts";
import {
  CHAT_BUSY,
  IMAGE_REJECTED,
  MESSAGE_NOT_STORED,
  MISSING_CONTENT,
  NOT_CAPABLE,
  REPLAY_IN_PROGRESS,
  SCOPE_REJECT,
  STORAGE_ERROR,
  TOOL_RESULT_REJECTED,
  UNKNOWN_AGENT,
  UNKNOWN_CALL_ID,
  WORKSPACE_SCOPE_REJECTED,
} from "../protocol/errors.ts";
import type { Reply } from "../protocol/events.ts";
import { NO_ACTIVE_TASK, type Runs } from "../runs/runs.ts";
import type { ToolCalls } from "../runs/tool-calls.ts";
import type { CheckedMedia, InboundMedia } from "../media/inbound.ts";
import type { MediaLibrary, MediaRef } from "../media/library.ts";
import { logConnectionClose, logConnectionOpen } from "./connection-log.ts";
import { type ReplayDeps, type ReplayTarget, replayThenSubscribe } from "./replay.ts";
import { resolveWorkspaceScope, scopePayload, type WorkspaceScope } from "./workspace-scope.ts";

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

/** The chat metadata a connection reads and writes (workspace scope, goal state, preview). */
export interface ChatMetadataAccess {
  metadata(chatId: string): Record<string, unknown> | undefined;
  mergeMetadata(chatId: string, patch: Record<string, unknown>): void;
  noteUserMessage(chatId: string, text: string): void;
  /** Records which agent serves a new chat. */
  createChat(chatId: string, agent: string): void;
  /** Makes sure the chat has a row (media rows point to it). */
  ensure(chatId: string): void;
}

/** Where accepted client_msg_ids are kept (the store): `accept` is durable when it returns. */
export interface MessageIdMemory {
  has(chatId: string, clientMsgId: string): boolean;
  accept(chatId: string, clientMsgId: string): void;
  forget(chatId: string, clientMsgId: string): void;
}

export interface ClientSessionDeps {
  hub: Hub;
  runs: Runs;
  chats: ChatMetadataAccess;
  replay: ReplayDeps;
  toolCalls: ToolCalls;
  inbound: InboundMedia;
  library: MediaLibrary;
  /** Is this a configured agent a client may pick with new_chat? */
  agentExists: (name: string) => boolean;
  /** client_msg_ids each chat accepted, kept durably. */
  messageIds: MessageIdMemory;
  log: Logger;
}

const STOP_COMMAND = "/stop";
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const send = (ws: ClientSocket, frame: Reply) => ws.send(JSON.stringify(frame));

const SOCKET_OPEN = 1;

/** What a replay may do with a socket. */
const replayTarget = (ws: ClientSocket): ReplayTarget => ({
  send: (frame) => ws.send(frame),
  subscribe: (topic) => ws.subscribe(topic),
  isOpen: () => ws.readyState === SOCKET_OPEN,
  drained: (bytes) => (ws.getBufferedAmount() < bytes ? Promise.resolve() : new Promise((resolve) => ws.data.drainWaiters.push(resolve))),
});

const MAX_CAPABILITIES = 64;
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

export class ClientSessions {
  readonly #open = new Set<ClientSocket>();

  constructor(private readonly deps: ClientSessionDeps) {}

  readonly handler: Required<Pick<WebSocketHandler<ClientData>, "open" | "message" | "drain" | "close">> = {
    open: (ws) => this.#onOpen(ws),
    message: (ws, raw) => this.#onFrame(ws, raw),
    drain: (ws) => this.#wakeReplays(ws),
    close: (ws, code) => {
      logConnectionClose(this.deps.log, ws, code);
      this.#open.delete(ws);
      this.#wakeReplays(ws);
      this.deps.toolCalls.clientLeft(ws.data.chats);
    },
  };

  /** Open connections in the chat that declared the tool. */
  capableClients(chatId: string, tool: string): number {
    let n = 0;
    for (const ws of this.#open) if (ws.data.chats.has(chatId) && ws.data.capabilities.has(tool)) n++;
    return n;
  }

  /** Shutdown: close every client connection with the given code (1001: going away). */
  closeAll(code: number, reason: string): void {
    for (const ws of this.#open) ws.close(code, reason);
  }

  #onOpen(ws: ClientSocket): void {
    this.#open.add(ws);
    logConnectionOpen(this.deps.log, ws);
    send(ws, { event: "ready", chat_id: ws.data.defaultChatId, client_id: ws.data.clientId });
    ws.subscribe(EVERYONE_TOPIC);
    this.#join(ws, ws.data.defaultChatId);
    this.#hydrate(ws, ws.data.defaultChatId);
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
    switch (inbound.kind) {
      case "ignored":
        return;
      case "legacy":
        return this.#submit(ws, ws.data.defaultChatId, inbound.content, {});
      case "invalid":
        return this.#fail(ws, inbound.error, inbound.chat_id);
      case "envelope": {
        const env = inbound.envelope;
        switch (env.type) {
          case "new_chat":
            return this.#newChat(ws, env);
          case "attach":
            return this.#attach(ws, env);
          case "message":
            return this.#message(ws, env);
          case "set_workspace_scope":
            return this.#setWorkspaceScope(ws, env);
          case "stop":
            return this.#stop(ws, env.chat_id);
          case "tool_result":
            return this.#toolResult(ws, env);
          case "ping":
            send(ws, { event: "pong" });
            return;
        }
      }
    }
  }

  #newChat(ws: ClientSocket, env: NewChat): void {
    if (env.agent !== undefined && !this.deps.agentExists(env.agent)) return this.#fail(ws, { detail: UNKNOWN_AGENT, reason: env.agent });
    const chatId = crypto.randomUUID();
    this.#declare(ws, env.capabilities);
    let scope: WorkspaceScope | undefined;
    if (env.workspace_scope !== undefined) {
      scope = this.#acceptScope(ws, env.workspace_scope, chatId);
      if (!scope) return;
    }
    if (env.agent !== undefined) this.deps.chats.createChat(chatId, env.agent);
    this.#join(ws, chatId);
    send(ws, { event: "attached", chat_id: chatId, latest_seq: this.deps.hub.latestSeq(chatId) });
    this.deps.hub.publish({
      event: "session_updated",
      chat_id: chatId,
      scope: "metadata",
      ...(scope && { workspace_scope: scopePayload(scope) }),
    });
  }

  #attach(ws: ClientSocket, env: Attach): void {
    const chatId = env.chat_id;
    if (ws.data.replaying.has(chatId)) return this.#fail(ws, { detail: REPLAY_IN_PROGRESS }, chatId);
    this.#declare(ws, env.capabilities);
    send(ws, { event: "attached", chat_id: chatId, latest_seq: this.deps.hub.latestSeq(chatId) });
    if (env.since_seq === undefined) {
      this.#join(ws, chatId);
      this.#hydrate(ws, chatId);
      return;
    }
    // Resume: off the live topic while replaying, so nothing can arrive out of order.
    ws.data.chats.add(chatId);
    ws.data.replaying.add(chatId);
    ws.unsubscribe(Hub.topicOf(chatId));
    replayThenSubscribe(replayTarget(ws), chatId, env.since_seq, this.deps.replay)
      .catch((e: unknown) => this.deps.log.error("replay failed", { chat_id: chatId, error: String(e) }))
      .finally(() => ws.data.replaying.delete(chatId));
  }

  #wakeReplays(ws: ClientSocket): void {
    for (const wake of ws.data.drainWaiters.splice(0)) wake();
  }

  #message(ws: ClientSocket, env: Message): void {
    const chatId = env.chat_id;
    const media = this.deps.inbound.check(chatId, env.media, env.media_ids);
    if (!media.ok) return this.#fail(ws, { detail: IMAGE_REJECTED, reason: media.reason }, chatId);
    const attachments = media.media.decoded.length + media.media.uploads.length;
    if (env.content.trim() === "" && attachments === 0) return this.#fail(ws, { detail: MISSING_CONTENT }, chatId);
    if (env.workspace_scope !== undefined && !this.#applyMessageScope(ws, chatId, env.workspace_scope)) return;
    if (this.#join(ws, chatId)) this.#hydrate(ws, chatId);
    const id = env.client_msg_id;
    if (id !== undefined && this.deps.messageIds.has(chatId, id)) {
      send(ws, { event: "message_ack", chat_id: chatId, client_msg_id: id, duplicate: true });
      return;
    }
    this.#submit(ws, chatId, env.content, env.webui === true ? { webui: true } : {}, id, attachments > 0 ? media.media : undefined);
  }

  /** A message's own workspace_scope: validated, refused while a turn runs with another scope, stored. */
  #applyMessageScope(ws: ClientSocket, chatId: string, raw: unknown): boolean {
    const scope = this.#acceptScope(ws, raw, chatId);
    if (!scope) return false;
    if (this.deps.runs.activeTurn(chatId) && !sameScope(scope, this.#scopeOf(chatId))) {
      this.#fail(ws, { detail: WORKSPACE_SCOPE_REJECTED, reason: SCOPE_REJECT.chatRunning }, chatId);
      return false;
    }
    this.deps.chats.mergeMetadata(chatId, { workspace_scope: scope });
    return true;
  }

  #toolResult(ws: ClientSocket, env: ToolResultEnvelope): void {
    const { chat_id, call_id, ok, result, error } = env;
    const canRun = (tool: string) => ws.data.chats.has(chat_id) && ws.data.capabilities.has(tool);
    const answer = this.deps.toolCalls.answer(chat_id, { call_id, ok, ...(result !== undefined && { result }), ...(error !== undefined && { error }) }, canRun);
    if (answer === "unknown_call") this.#fail(ws, { detail: UNKNOWN_CALL_ID, reason: call_id }, chat_id);
    else if (answer === "not_capable") this.#fail(ws, { detail: TOOL_RESULT_REJECTED, reason: NOT_CAPABLE }, chat_id);
  }

  #declare(ws: ClientSocket, capabilities: string[] | undefined): void {
    for (const c of capabilities ?? []) if (ws.data.capabilities.size < MAX_CAPABILITIES) ws.data.capabilities.add(c);
  }

  #setWorkspaceScope(ws: ClientSocket, env: SetWorkspaceScope): void {
    const chatId = env.chat_id;
    if (this.deps.runs.activeTurn(chatId)) {
      return this.#fail(ws, { detail: WORKSPACE_SCOPE_REJECTED, reason: SCOPE_REJECT.chatRunning }, chatId);
    }
    const scope = this.#acceptScope(ws, env.workspace_scope, chatId);
    if (!scope) return;
    this.deps.chats.mergeMetadata(chatId, { workspace_scope: scope });
    this.deps.hub.publish({ event: "session_updated", chat_id: chatId, scope: "metadata", workspace_scope: scopePayload(scope) });
  }

  /** Validates a requested scope; on failure the client is told why and undefined is returned. */
  #acceptScope(ws: ClientSocket, raw: unknown, chatId: string): WorkspaceScope | undefined {
    const result = resolveWorkspaceScope(raw, ws.data.local);
    if (result.ok) return result.scope;
    this.#fail(ws, { detail: WORKSPACE_SCOPE_REJECTED, reason: result.reason }, chatId);
    return undefined;
  }

  #scopeOf(chatId: string): WorkspaceScope | undefined {
    return this.deps.chats.metadata(chatId)?.workspace_scope as WorkspaceScope | undefined;
  }

  #submit(ws: ClientSocket, chatId: string, content: string, extra: Record<string, unknown>, clientMsgId?: string, media?: CheckedMedia): void {
    if (content.trim() === STOP_COMMAND && !media) return this.#stop(ws, chatId);
    // Refused before anything is remembered: a resend once the chat is free must run.
    if (!this.deps.runs.hasRoom(chatId)) return this.#fail(ws, { detail: CHAT_BUSY }, chatId);
    const { hub, chats, runs, inbound, library, messageIds } = this.deps;
    if (clientMsgId !== undefined || media) chats.ensure(chatId);
    const refs: MediaRef[] = media ? inbound.store(chatId, media) : [];
    // Durable before visible: the id is on disk before the ack and the user event go out.
    if (clientMsgId !== undefined) messageIds.accept(chatId, clientMsgId);
    const urls = refs.map((r) => library.url(r));
    const user = {
      event: "user" as const,
      chat_id: chatId,
      text: content,
      client_id: ws.data.clientId,
      ...(clientMsgId !== undefined && { client_msg_id: clientMsgId }),
      ...(refs.length > 0 && { media_urls: refs.map((r, i) => ({ url: urls[i]!, name: r.name })), private: { media: refs.map((r) => r.relPath) } }),
    };
    const userSeq = hub.publish(user);
    if (userSeq === 0) {
      // The store refused the message: nothing runs and nothing is remembered, so a resend will run.
      if (clientMsgId !== undefined) messageIds.forget(chatId, clientMsgId);
      return this.#fail(ws, { detail: STORAGE_ERROR, reason: MESSAGE_NOT_STORED }, chatId);
    }
    if (clientMsgId !== undefined) send(ws, { event: "message_ack", chat_id: chatId, client_msg_id: clientMsgId, duplicate: false });
    chats.noteUserMessage(chatId, content);
    const scope = this.#scopeOf(chatId);
    const metadata = { client_id: ws.data.clientId, remote: ws.data.remote, ...extra, ...(scope && { workspace_scope: scope }) };
    runs.submit(chatId, { content, media: refs.map((r, i) => library.forAgent(r, urls[i]!)), metadata, userSeq });
  }

  /** `stop` and content "/stop" alike: cancel the turn, clear the queue, and say so in the chat. */
  /** A stop in a chat that does not exist is answered to this client only: it creates nothing. */
  #stop(ws: ClientSocket, chatId: string): void {
    if (this.deps.chats.metadata(chatId) !== undefined || this.deps.runs.activeTurn(chatId)) this.deps.runs.stop(chatId);
    else send(ws, { event: "message", chat_id: chatId, text: NO_ACTIVE_TASK });
  }

  /** Subscribes the socket to a chat; false if it already was. */
  #join(ws: ClientSocket, chatId: string): boolean {
    if (ws.data.chats.has(chatId)) return false;
    ws.data.chats.add(chatId);
    ws.subscribe(Hub.topicOf(chatId));
    return true;
  }

  /** What a newly subscribed client must know to render the chat's state now (reference §3.4). */
  #hydrate(ws: ClientSocket, chatId: string): void {
    const goal = this.deps.chats.metadata(chatId)?.goal_state as { active?: boolean } | undefined;
    if (goal?.active) send(ws, { event: "goal_state", chat_id: chatId, goal_state: { ...goal, active: true } });
    const turn = this.deps.runs.activeTurn(chatId);
    if (turn) send(ws, { event: "goal_status", chat_id: chatId, status: "running", started_at: turn.startedAt, turn_id: turn.turnId });
  }

  #fail(ws: ClientSocket, error: EnvelopeError, chatId?: string): void {
    send(ws, { event: "error", ...error, ...(chatId !== undefined && { chat_id: chatId }) });
  }
}

function sameScope(a: WorkspaceScope, b: WorkspaceScope | undefined): boolean {
  return b !== undefined && a.project_path === b.project_path && a.access_mode === b.access_mode;
}
