/**
 * What a client asks of a chat: new_chat, attach (live or resuming with since_seq),
 * message (and legacy frames), stop, set_workspace_scope and tool_result. Replies to
 * the asking socket go straight to it; everything that belongs to a chat goes through
 * the hub so every subscriber, on every listener, sees one ordered stream. Refusals
 * are `error` frames to the asker; the socket stays open.
 */
import { Hub } from "../chat/hub.ts";
import { isSharedStoreError } from "../cluster/cluster.ts";
import type { Logger } from "../log.ts";
import type { CheckedMedia, InboundMedia } from "../media/inbound.ts";
import type { MediaLibrary, MediaRef } from "../media/library.ts";
import type { Attach, Message, NewChat, SetWorkspaceScope, ToolResultEnvelope } from "../protocol/client.ts";
import {
  CHAT_BUSY,
  IMAGE_REJECT,
  IMAGE_REJECTED,
  INTERNAL_ERROR,
  MESSAGE_NOT_STORED,
  MISSING_CONTENT,
  NOT_CAPABLE,
  REPLAY_IN_PROGRESS,
  STORAGE_ERROR,
  STORE_FAILED,
  TOOL_RESULT_REJECTED,
  UNKNOWN_AGENT,
  UNKNOWN_CALL_ID,
  WORKSPACE_SCOPE_REJECTED,
} from "../protocol/errors.ts";
import { NO_ACTIVE_TASK, type Runs } from "../runs/runs.ts";
import type { ToolCalls } from "../runs/tool-calls.ts";
import { reply, replyError } from "./replies.ts";
import { type ReplayDeps, type ReplayTarget, replayThenSubscribe } from "./replay.ts";
import type { ClientData, ClientSocket } from "./client-socket.ts";
import { resolveWorkspaceScope, type ScopeResult, scopePayload, type WorkspaceScope, WorkspaceScopes } from "./workspace-scope.ts";

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

/** Clustered only: which chats another gateway writes (src/cluster/node.ts). */
export interface ChatPlacement {
  /** Resolves once this node mirrors the chat, caught up, when another node writes it. */
  follow(chatId: string): Promise<void>;
  /** False while another node holds the chat's lease: a message sent here is forwarded to it. */
  writableHere(chatId: string): Promise<boolean>;
  /**
   * Hands a frame to the node writing the chat; its replies (ack, error) come back to `sender`. `leaving`
   * turns it into what another node can run, only when it does leave this node; a chat that turns out
   * writable here runs the frame as it is.
   */
  forward(sender: MessageSender, frame: ForwardedFrame, leaving?: (frame: ForwardedFrame) => Promise<ForwardedFrame>): Promise<void>;
}

/** Who sent a message, as far as running it needs: where replies go and who to name in the chat. */
export interface MessageSender {
  send(frame: string): unknown;
  readonly data: Pick<ClientData, "clientId" | "remote" | "local">;
}

/** A tool result one node hands to the chat's writer, with the tools its sender may answer for (none if not attached to the chat). */
export type ForwardedToolResult = ToolResultEnvelope & { capabilities: string[] };

/**
 * What one node hands to the node writing the chat, as its client sent it
 * (already checked against the protocol's schema), except that a message's
 * uploads travel as inline media: they are files of the node that received it.
 */
export type ForwardedFrame = Message | SetWorkspaceScope | ForwardedToolResult;

/** A message a chat's writer accepted (its `user` event is published) and queued, left unrun when the writer died. */
export interface QueuedTurn {
  /** Seq of its `user` event: the turn answers it. */
  seq: number;
  text: string;
  clientId: string;
  /** Its `user` event's media URLs: files the turn gets when this node can read them (a shared cluster_media_dir). */
  media: { url: string; name: string }[];
}

/** Where accepted client_msg_ids are kept (the store): `accept` is durable when it returns. */
export interface MessageIdMemory {
  has(chatId: string, clientMsgId: string): boolean;
  accept(chatId: string, clientMsgId: string): void;
}

export interface ChatActionDeps {
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
  placement?: ChatPlacement;
  /** Clustered: the socket joined a chat or declared tools (ClientSessions reports its capable devices). */
  devicesChanged?: (ws: ClientSocket) => void;
  log: Logger;
}

const STOP_COMMAND = "/stop";
const SOCKET_OPEN = 1;
/** Tools one connection may declare. */
export const MAX_CAPABILITIES = 64;

/** What a replay may do with a socket. */
const replayTarget = (ws: ClientSocket): ReplayTarget => ({
  send: (frame) => ws.send(frame),
  subscribe: (topic) => ws.subscribe(topic),
  isOpen: () => ws.readyState === SOCKET_OPEN,
  drained: (bytes) => (ws.getBufferedAmount() < bytes ? Promise.resolve() : new Promise((resolve) => ws.data.drainWaiters.push(resolve))),
});

/** A refused workspace_scope, told to the asker; true when the scope was accepted. */
const scopeAccepted = (ws: MessageSender, result: ScopeResult, chatId: string): result is { ok: true; scope: WorkspaceScope } => {
  if (!result.ok) replyError(ws, { detail: WORKSPACE_SCOPE_REJECTED, reason: result.reason }, chatId);
  return result.ok;
};

const idKey = (chatId: string, clientMsgId: string) => `${chatId}\n${clientMsgId}`;

export class ChatActions {
  readonly #scopes: WorkspaceScopes;
  /** client_msg_ids whose user event waits for its commit (chat + "\n" + id). */
  readonly #acceptingIds = new Set<string>();

  constructor(private readonly deps: ChatActionDeps) {
    const { chats, runs } = deps;
    this.#scopes = new WorkspaceScopes({
      metadata: (chatId) => chats.metadata(chatId),
      mergeMetadata: (chatId, patch) => chats.mergeMetadata(chatId, patch),
      running: (chatId) => runs.activeTurn(chatId) !== undefined,
    });
  }

  newChat(ws: ClientSocket, env: NewChat): void {
    if (env.agent !== undefined && !this.deps.agentExists(env.agent)) return replyError(ws, { detail: UNKNOWN_AGENT, reason: env.agent });
    const chatId = crypto.randomUUID();
    this.#declare(ws, env.capabilities);
    let scope: WorkspaceScope | undefined;
    if (env.workspace_scope !== undefined) {
      const result = resolveWorkspaceScope(env.workspace_scope, ws.data.local);
      if (!scopeAccepted(ws, result, chatId)) return;
      scope = result.scope;
    }
    if (env.agent !== undefined) this.deps.chats.createChat(chatId, env.agent);
    if (scope) this.#scopes.adopt(chatId, scope);
    this.join(ws, chatId);
    reply(ws, { event: "attached", chat_id: chatId, latest_seq: this.deps.hub.latestSeq(chatId) });
    this.deps.hub.publish({
      event: "session_updated",
      chat_id: chatId,
      scope: "metadata",
      ...(scope && { workspace_scope: scopePayload(scope) }),
    });
  }

  attach(ws: ClientSocket, env: Attach): void {
    const { placement } = this.deps;
    if (!placement) return this.#attach(ws, env);
    this.#whenPlaced(ws, env.chat_id, placement.follow(env.chat_id), () => this.#attach(ws, env));
  }

  /** Runs `here` where the chat is written: on this node (always, single node), else `elsewhere` hands the frame to the writer. */
  #onWriter(ws: ClientSocket, chatId: string, here: () => unknown, elsewhere: (placement: ChatPlacement) => unknown): void {
    const { placement } = this.deps;
    if (!placement) return void here();
    this.#whenPlaced(ws, chatId, placement.writableHere(chatId), (writable) => (writable ? here() : elsewhere(placement)));
  }

  /**
   * Clustered: `handle` runs once the chat's placement is known, outside the
   * socket's error boundary (src/connections.ts), so it gets one of its own: it
   * never rejects (an unhandled rejection would end the process).
   */
  #whenPlaced<T>(sender: MessageSender, chatId: string, placing: Promise<T>, handle: (placed: T) => unknown): void {
    placing.then(handle).catch((e: unknown) => this.#handlingFailed(sender, chatId, e));
  }

  /** A failure of Redis or PostgreSQL is answered as a failing store; anything else as the socket boundary answers a failed frame. */
  #handlingFailed(sender: MessageSender, chatId: string, error: unknown): void {
    try {
      const shared = isSharedStoreError(error);
      this.deps.log.error(shared ? "cluster store failed" : "handling a clustered frame failed", { chat_id: chatId, error: String(error) });
      replyError(sender, shared ? { detail: STORAGE_ERROR, reason: STORE_FAILED } : { detail: INTERNAL_ERROR }, chatId);
    } catch {
      // The log sink or the socket failed too: nothing more to tell anyone.
    }
  }

  #attach(ws: ClientSocket, env: Attach): void {
    const chatId = env.chat_id;
    if (ws.data.replaying.has(chatId)) return replyError(ws, { detail: REPLAY_IN_PROGRESS }, chatId);
    this.#declare(ws, env.capabilities);
    reply(ws, { event: "attached", chat_id: chatId, latest_seq: this.deps.hub.latestSeq(chatId) });
    if (env.since_seq === undefined) {
      this.join(ws, chatId);
      this.hydrate(ws, chatId);
      return;
    }
    // Resume: off the live topic while replaying, so nothing can arrive out of order.
    ws.data.chats.add(chatId);
    this.deps.devicesChanged?.(ws);
    ws.data.replaying.add(chatId);
    ws.unsubscribe(Hub.topicOf(chatId));
    replayThenSubscribe(replayTarget(ws), chatId, env.since_seq, this.deps.replay)
      .catch((e: unknown) => this.deps.log.error("replay failed", { chat_id: chatId, error: String(e) }))
      .finally(() => ws.data.replaying.delete(chatId));
  }

  message(ws: ClientSocket, env: Message): void {
    this.#onWriter(ws, env.chat_id, () => this.#message(ws, env), (placement) => this.#forward(ws, env, placement));
  }

  /**
   * Another node writes the chat: the client follows it here and the message
   * runs there, checked there. Uploads named by media_ids are files of this
   * node: when the message leaves it, their bytes go along as inline media
   * (stored by the writer, served by its signed URLs); the uploads stay
   * unclaimed here, swept as any unclaimed upload. Read only then: a chat that
   * turns out writable here (its lease freed meanwhile) claims them as they are.
   */
  async #forward(ws: ClientSocket, env: Message, placement: ChatPlacement): Promise<void> {
    const chatId = env.chat_id;
    const { library } = this.deps;
    const uploads = library.uploads(env.media_ids ?? [], chatId)?.map((u) => ({ ...u, path: library.resolveInside(u.relPath) }));
    if (!uploads || uploads.some((u) => u.path === undefined)) return replyError(ws, { detail: IMAGE_REJECTED, reason: IMAGE_REJECT.unknownMedia }, chatId);
    await placement.follow(chatId);
    if (this.join(ws, chatId)) this.hydrate(ws, chatId);
    const { media_ids: _uploadedHere, ...rest } = env;
    const leaving = async (): Promise<Message> => {
      if (uploads.length === 0) return rest;
      const inlined = await Promise.all(uploads.map(async (u) => ({ data_url: `data:${u.mime};base64,${Buffer.from(await Bun.file(u.path!).arrayBuffer()).toString("base64")}`, name: u.name })));
      return { ...rest, media: [...(env.media ?? []), ...inlined] };
    };
    await placement.forward(ws, env, leaving);
  }

  /** On the node writing the chat: a frame another node received, handled as if sent here; replies and failures go to its sender. */
  forwarded(sender: MessageSender, frame: ForwardedFrame): void {
    try {
      if (frame.type === "message") this.#runMessage(sender, frame);
      else if (frame.type === "set_workspace_scope") this.#setScope(sender, frame);
      else this.#answerTool(sender, frame, (tool) => frame.capabilities.includes(tool));
    } catch (e) {
      this.#handlingFailed(sender, frame.chat_id, e);
    }
  }

  #message(ws: ClientSocket, env: Message): void {
    this.#runMessage(ws, env, ws);
  }

  /** Checks and submits a message on the chat's writer; `joining`: the sending socket, when it is here, subscribes to the chat. */
  #runMessage(sender: MessageSender, env: Message, joining?: ClientSocket): void {
    const chatId = env.chat_id;
    const media = this.deps.inbound.check(chatId, env.media, env.media_ids);
    if (!media.ok) return replyError(sender, { detail: IMAGE_REJECTED, reason: media.reason }, chatId);
    const attachments = media.media.decoded.length + media.media.uploads.length;
    if (env.content.trim() === "" && attachments === 0) return replyError(sender, { detail: MISSING_CONTENT }, chatId);
    if (env.workspace_scope !== undefined && !scopeAccepted(sender, this.#scopes.applyToMessage(chatId, env.workspace_scope, sender.data.local), chatId)) return;
    if (joining && this.join(joining, chatId)) this.hydrate(joining, chatId);
    this.#submitOnce(sender, chatId, env.content, env.webui === true ? { webui: true } : {}, env.client_msg_id, attachments > 0 ? media.media : undefined);
  }

  /** Submits unless the client_msg_id was accepted before (then acked as a duplicate once the first copy is durable). */
  #submitOnce(sender: MessageSender, chatId: string, content: string, extra: Record<string, unknown>, id?: string, media?: CheckedMedia): void {
    if (id !== undefined && (this.#acceptingIds.has(idKey(chatId, id)) || this.deps.messageIds.has(chatId, id))) {
      this.deps.hub.afterCommit(() => reply(sender, { event: "message_ack", chat_id: chatId, client_msg_id: id, duplicate: true }));
      return;
    }
    this.submit(sender, chatId, content, extra, id, media);
  }

  /** In a cluster it runs where the chat is written (the scope is that node's chat metadata). */
  setWorkspaceScope(ws: ClientSocket, env: SetWorkspaceScope): void {
    this.#onWriter(ws, env.chat_id, () => this.#setScope(ws, env), (placement) => placement.forward(ws, env));
  }

  #setScope(sender: MessageSender, env: SetWorkspaceScope): void {
    const chatId = env.chat_id;
    const result = this.#scopes.set(chatId, env.workspace_scope, sender.data.local);
    if (!scopeAccepted(sender, result, chatId)) return;
    this.deps.hub.publish({ event: "session_updated", chat_id: chatId, scope: "metadata", workspace_scope: scopePayload(result.scope) });
  }

  /** In a cluster it answers the call where it is pending, on the chat's writer, with the tools this socket declared if it is attached to the chat. */
  toolResult(ws: ClientSocket, env: ToolResultEnvelope): void {
    const canRun = (tool: string) => ws.data.chats.has(env.chat_id) && ws.data.capabilities.has(tool);
    const capabilities = () => (ws.data.chats.has(env.chat_id) ? [...ws.data.capabilities] : []);
    this.#onWriter(ws, env.chat_id, () => this.#answerTool(ws, env, canRun), (placement) => placement.forward(ws, { ...env, capabilities: capabilities() }));
  }

  #answerTool(sender: MessageSender, env: ToolResultEnvelope, canRun: (tool: string) => boolean): void {
    const { chat_id, call_id, ok, result, error } = env;
    const answer = this.deps.toolCalls.answer(chat_id, { call_id, ok, ...(result !== undefined && { result }), ...(error !== undefined && { error }) }, canRun);
    if (answer === "unknown_call") replyError(sender, { detail: UNKNOWN_CALL_ID, reason: call_id }, chat_id);
    else if (answer === "not_capable") replyError(sender, { detail: TOOL_RESULT_REJECTED, reason: NOT_CAPABLE }, chat_id);
  }

  /**
   * Durable before visible, for resend protection too: the id is remembered and
   * acked only once the user event is written. A crash before that loses the ack
   * and the id together, so the client's resend runs; a crash between the event's
   * write and the id's can at worst run a resend of an interrupted message again.
   * Clustered, a batch Redis refuses for good (another node writes the chat)
   * stored nothing: the sender is told to send again, and nothing is remembered.
   */
  #answerOnceDurable(ws: MessageSender, chatId: string, clientMsgId: string | undefined): void {
    const { placement, hub } = this.deps;
    if (clientMsgId === undefined && !placement) return;
    const key = clientMsgId === undefined ? undefined : idKey(chatId, clientMsgId);
    if (key !== undefined) this.#acceptingIds.add(key);
    const notStored = placement && {
      chatId,
      run: () => {
        if (key !== undefined) this.#acceptingIds.delete(key);
        replyError(ws, { detail: STORAGE_ERROR, reason: MESSAGE_NOT_STORED }, chatId);
      },
    };
    hub.afterCommit(() => {
      if (clientMsgId === undefined) return;
      this.#acceptingIds.delete(idKey(chatId, clientMsgId));
      try {
        this.deps.messageIds.accept(chatId, clientMsgId);
      } catch (e) {
        // The message is stored and runs; only its resend protection across a restart is lost.
        this.deps.log.error("could not record a client_msg_id", { chat_id: chatId, error: String(e) });
      }
      reply(ws, { event: "message_ack", chat_id: chatId, client_msg_id: clientMsgId, duplicate: false });
    }, notStored);
  }

  /** A user message (typed or legacy) into the chat: published, then run; acked once durable. */
  submit(ws: MessageSender, chatId: string, content: string, extra: Record<string, unknown>, clientMsgId?: string, media?: CheckedMedia): void {
    if (content.trim() === STOP_COMMAND && !media) return this.stop(ws, chatId);
    // Refused before anything is remembered: a resend once the chat is free must run.
    if (!this.deps.runs.hasRoom(chatId)) return replyError(ws, { detail: CHAT_BUSY }, chatId);
    const { hub, chats, runs, inbound, library } = this.deps;
    if (clientMsgId !== undefined || media) chats.ensure(chatId);
    const refs: MediaRef[] = media ? inbound.store(chatId, media) : [];
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
    // The store refused the message: nothing runs and nothing is remembered, so a resend will run.
    if (userSeq === 0) return replyError(ws, { detail: STORAGE_ERROR, reason: MESSAGE_NOT_STORED }, chatId);
    this.#answerOnceDurable(ws, chatId, clientMsgId);
    chats.noteUserMessage(chatId, content);
    const scope = this.#scopes.of(chatId);
    const metadata = { client_id: ws.data.clientId, remote: ws.data.remote, ...extra, ...(scope && { workspace_scope: scope }) };
    runs.submit(chatId, { content, media: refs.map((r, i) => library.forAgent(r, urls[i]!)), metadata, userSeq });
  }

  /**
   * Clustered, on the node that took the chat over: a message its dead writer
   * had queued runs here as its turn (answering its published user event).
   * Its media comes along when the dead writer's files are readable here (a shared cluster_media_dir).
   */
  runQueued(chatId: string, message: QueuedTurn): void {
    const scope = this.#scopes.of(chatId);
    const metadata = { client_id: message.clientId, ...(scope && { workspace_scope: scope }) };
    this.deps.runs.submit(chatId, { content: message.text, media: this.deps.library.forAgentFromUrls(message.media), metadata, userSeq: message.seq });
  }

  /** A `stop` frame. In a cluster it runs where the chat is written: sent on to the writer as "/stop" when that is another node. */
  stopFrame(ws: ClientSocket, chatId: string): void {
    this.#onWriter(ws, chatId, () => this.stop(ws, chatId), (placement) => placement.forward(ws, { type: "message", chat_id: chatId, content: STOP_COMMAND }));
  }

  /**
   * `stop` and content "/stop" alike: cancel the turn, clear the queue, and say so in the chat.
   * A stop in a chat that does not exist is answered to this client only: it creates nothing.
   */
  stop(ws: MessageSender, chatId: string): void {
    if (this.deps.chats.metadata(chatId) !== undefined || this.deps.runs.activeTurn(chatId)) this.deps.runs.stop(chatId);
    else reply(ws, { event: "message", chat_id: chatId, text: NO_ACTIVE_TASK });
  }

  /** Subscribes the socket to a chat; false if it already was. */
  join(ws: ClientSocket, chatId: string): boolean {
    if (ws.data.chats.has(chatId)) return false;
    ws.data.chats.add(chatId);
    ws.subscribe(Hub.topicOf(chatId));
    this.deps.devicesChanged?.(ws);
    return true;
  }

  /** What a newly subscribed client must know to render the chat's state now (reference §3.4). */
  hydrate(ws: ClientSocket, chatId: string): void {
    const goal = this.deps.chats.metadata(chatId)?.goal_state as { active?: boolean } | undefined;
    if (goal?.active) reply(ws, { event: "goal_state", chat_id: chatId, goal_state: { ...goal, active: true } });
    // Told only once the turn's start is durable (a turn started in this loop turn is still
    // staged), and only if it is still running then: a fast turn may have ended in that commit.
    this.deps.hub.afterCommit(() => {
      const turn = this.deps.runs.activeTurn(chatId);
      if (turn) reply(ws, { event: "goal_status", chat_id: chatId, status: "running", started_at: turn.startedAt, turn_id: turn.turnId });
    });
  }

  #declare(ws: ClientSocket, capabilities: string[] | undefined): void {
    for (const c of capabilities ?? []) if (ws.data.capabilities.size < MAX_CAPABILITIES) ws.data.capabilities.add(c);
    if (capabilities?.length) this.deps.devicesChanged?.(ws);
  }
}
