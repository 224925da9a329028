/**
 * The composition root: builds every part, wires them together and starts the
 * listeners; `stop` takes them down in order. Read it top to bottom to see the
 * whole gateway.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { AgentEvents } from "./agents/agent.ts";
import { AgentRegistry } from "./agents/registry.ts";
import { IssuedTokens } from "./auth/issued-tokens.ts";
import { ClientSessions } from "./clients/session.ts";
import type { Config } from "./config.ts";
import { chatEvents, conversation } from "./history.ts";
import { createHttpApp } from "./http/app.ts";
import { clientLine } from "./media/client-line.ts";
import { InboundMedia } from "./media/inbound.ts";
import { MediaLibrary } from "./media/library.ts";
import { OutboundMedia } from "./media/outbound.ts";
import { loadOrCreateSecret, MediaSigner } from "./media/signing.ts";
import { Hub } from "./hub.ts";
import { type Listener, startListeners } from "./listen.ts";
import type { Logger } from "./log.ts";
import type { RuntimeModelUpdated } from "./protocol/events.ts";
import { readinessChecks } from "./readiness.ts";
import { closeInterruptedTurns } from "./runs/recover.ts";
import { Runs, type TurnLog } from "./runs/runs.ts";
import { ToolCalls } from "./runs/tool-calls.ts";
import { ChatStore } from "./store/chat-store.ts";
import { openDatabase } from "./store/db.ts";
import { TranscriptWriter, transcriptPath } from "./store/transcript.ts";

/** WebSocket close code for "going away": clients reconnect elsewhere or later. */
const CLOSE_GOING_AWAY = 1001;

export interface Gateway {
  readonly config: Config;
  readonly listeners: Listener[];
  readonly hub: Hub;
  readonly tokens: IssuedTokens;
  /** Tells every open connection the runtime model changed (blank names are ignored). */
  announceModel(modelName: string, modelPreset?: string): void;
  /** Orderly shutdown: stop accepting, let turns settle, close clients with 1001, flush, remove the socket. */
  stop(): Promise<void>;
}

export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
  const transcriptsDir = join(config.data_dir, "transcripts");
  const transcriptFile = (chatId: string) => transcriptPath(transcriptsDir, chatId);

  // Storage: chat and turn rows in SQLite; events in per-chat JSONL transcripts.
  const db = openDatabase(join(config.data_dir, "agentgate.db"), config.sqlite_busy_timeout_ms);
  const store = new ChatStore(db, config.agent);
  const transcript = new TranscriptWriter({
    dir: transcriptsDir,
    flushMs: config.transcript_flush_ms,
    fsync: config.transcript_fsync,
    maxLineBytes: config.transcript_max_line_bytes,
    maxOpenFiles: config.transcript_max_open_files,
    log,
    onFlushed: (chatId, seq) => hub.flushed(chatId, seq),
  });

  // The hub: per-chat seq, one serialization, native fan-out, replay ring, transcript hand-off.
  const hub = new Hub(
    {
      loadSeq: (chatId) => store.get(chatId)?.lastSeq ?? 0,
      reserveSeq: (chatId, through) => store.reserveSeq(chatId, through),
      append: (chatId, seq, frame) => transcript.append(chatId, seq, frame),
    },
    {
      ring: { maxEvents: config.replay_ring_events, maxBytes: config.replay_ring_bytes },
      ringTotalBytes: config.replay_ring_total_bytes,
    },
  );
  closeInterruptedTurns(store, hub, log);

  // Media: files under <data_dir>/media with a row each, served by signed, expiring URLs.
  const signer = new MediaSigner(loadOrCreateSecret(join(config.data_dir, "media-secret")), config.media_url_ttl_s);
  const library = new MediaLibrary(join(config.data_dir, "media"), db, signer, log);
  await library.sweep();
  await library.forgetUnclaimedUploads(config.media_unclaimed_upload_s * 1000);
  const mediaLimits = {
    maxImages: config.media_max_images,
    maxImageBytes: config.media_max_image_bytes,
    maxVideos: config.media_max_videos,
    maxVideoBytes: config.media_max_video_bytes,
  };
  const workspaceOf = (chatId: string) => (store.metadata(chatId)?.workspace_scope as { project_path?: string } | undefined)?.project_path;
  const outbound = new OutboundMedia(
    library,
    (chatId) => [workspaceOf(chatId), ...config.media_allowed_roots].filter((r): r is string => Boolean(r)),
    config.media_max_outbound_bytes,
    log,
  );
  const toClient = clientLine(signer);

  const announceModel = (modelName: string, modelPreset?: string) => {
    const name = modelName.trim();
    if (name === "") return;
    const frame: RuntimeModelUpdated = { event: "runtime_model_updated", model_name: name };
    if (modelPreset?.trim()) frame.model_preset = modelPreset.trim();
    hub.broadcast(frame);
  };

  // Agents: what they may do outside turns, and the history the LLM agent reads.
  const agentEvents: AgentEvents = {
    proactiveMessage: (chatId, fields) => void hub.publish({ event: "message", chat_id: chatId, ...fields }),
    sessionUpdate: (chatId, title) => {
      if (title === undefined) return;
      store.ensure(chatId);
      store.setTitle(chatId, title);
      hub.publish({ event: "session_updated", chat_id: chatId, scope: "metadata", title });
    },
    model: announceModel,
  };
  const readHistory = (chatId: string, throughSeq: number) => conversation(hub, transcriptFile(chatId), chatId, throughSeq);
  const agents = new AgentRegistry(config, agentEvents, readHistory, log);

  // Runs: one active turn per chat, recorded in the store; device tool calls.
  const toolCalls = new ToolCalls({
    hub,
    capableClients: (chatId, tool): number => clients.capableClients(chatId, tool),
    defaultTimeoutMs: config.tool_call_timeout_ms,
    disconnectGraceMs: config.tool_disconnect_grace_ms,
  });
  const turnLog: TurnLog = {
    started: (turnId, chatId, startedMs) => store.turnStarted(turnId, chatId, new Date(startedMs)),
    ended: (turnId, chatId, result, latencyMs) => {
      store.turnEnded(turnId, result.status, latencyMs, result.error);
      void transcript.flushChat(chatId);
    },
  };
  const runs = new Runs({
    hub,
    turnLog,
    toolCalls,
    media: outbound,
    readEvents: (chatId, fromSeq) => chatEvents(hub, transcriptFile(chatId), chatId, Number.POSITIVE_INFINITY, fromSeq),
    agentFor: (chatId) => agents.get(store.agentOf(chatId) ?? config.agent) ?? agents.get(config.agent)!,
    streaming: config.streaming,
    maxQueuedTurns: config.max_queued_turns,
    log,
  });

  // Clients and HTTP.
  const tokens = new IssuedTokens(config.token_ttl_s * 1000, config.max_outstanding_tokens);
  const apiTokens = new IssuedTokens(config.token_ttl_s * 1000, config.max_outstanding_tokens);
  const clients = new ClientSessions({
    hub,
    runs,
    chats: store,
    replay: { hub, transcriptFile, bufferBytes: config.replay_buffer_bytes, toClient },
    toolCalls,
    inbound: new InboundMedia(library, mediaLimits),
    library,
    agentExists: (name) => agents.has(name),
    clientMsgIdMemory: config.client_msg_id_memory,
    log,
  });
  const deleteChat = async (chatId: string) => {
    await runs.stopAndWait(chatId);
    await library.removeChat(chatId);
    await transcript.remove(chatId);
    store.delete(chatId);
    hub.forget(chatId);
  };
  let serving = false;
  const app = createHttpApp({
    config,
    wsTokens: tokens,
    apiTokens,
    sessions: { store, hub, runs, transcriptFile, toClient, deleteChat },
    chats: { hub, runs, maxTextBytes: config.max_message_bytes },
    media: { signer, library, limits: mediaLimits },
    modelName: config.model_name || config.agent,
    readiness: readinessChecks({ db, agents, serving: () => serving }),
    log,
  });

  const listeners = await startListeners({ config, app, clients, agents: agents.ws, tokens });
  for (const l of listeners) hub.addListener(l.server);
  serving = true;

  const stop = async () => {
    serving = false;
    const stopped = listeners.map((l) => l.server.stop());
    await runs.settle(config.shutdown_grace_ms);
    clients.closeAll(CLOSE_GOING_AWAY, "server shutting down");
    await agents.closeAll();
    await Promise.race([Promise.all(stopped), Bun.sleep(1000)]);
    for (const l of listeners) {
      l.server.stop(true);
      hub.removeListener(l.server);
      if (l.transport === "unix") rmSync(l.address, { force: true });
    }
    store.flush();
    await transcript.close();
    hub.settle();
    db.$client.close();
  };

  return { config, listeners, hub, tokens, announceModel, stop };
}
