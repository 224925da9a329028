/**
 * The composition root: builds every part, wires them together and starts the
 * listeners; `stop` takes them down in order. Read it top to bottom to see the
 * whole gateway.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { AgentRegistry } from "./agents/registry.ts";
import { IssuedTokens, type SingleUseTokens } from "./auth/issued-tokens.ts";
import { TrustPolicy } from "./auth/peer.ts";
import { clientLine } from "./chat/client-line.ts";
import { connectCluster } from "./cluster/cluster.ts";
import { ClusterDevices } from "./cluster/devices.ts";
import { ClusterNode } from "./cluster/node.ts";
import { SharedTokens } from "./cluster/shared-tokens.ts";
import type { TokenKind } from "./cluster/keys.ts";
import { Hub } from "./chat/hub.ts";
import { ChatReader } from "./chat/reader.ts";
import { ChatStorage, recoverTranscripts } from "./chat/storage.ts";
import { ClientSessions } from "./clients/session.ts";
import type { Config } from "./config.ts";
import { conversation } from "./history.ts";
import { createHttpApp } from "./http/app.ts";
import { InboundMedia } from "./media/inbound.ts";
import { MediaLibrary } from "./media/library.ts";
import { localSessions } from "./http/sessions.ts";
import { SharedSessions } from "./cluster/shared-sessions.ts";
import type { SharedMetadata } from "./store/shared-metadata.ts";
import { OutboundMedia } from "./media/outbound.ts";
import { loadOrCreateSecret, MediaSigner } from "./media/signing.ts";
import { secretFile, sharedMediaDirProblem } from "./media/shared-dir.ts";
import { type BoundListeners, bindListeners, type Listener } from "./listen.ts";
import { connectionHandlers } from "./connections.ts";
import type { Logger } from "./log.ts";
import { gatewayGauges, metrics } from "./metrics/metrics.ts";
import { CLOSE_GOING_AWAY, GOING_AWAY_REASON } from "./protocol/errors.ts";
import type { RuntimeModelUpdated } from "./protocol/events.ts";
import { AgentOutput } from "./runs/agent-output.ts";
import { readinessChecks } from "./readiness.ts";
import { closeInterruptedTurns, publishInterrupted } from "./runs/recover.ts";
import { Runs, type TurnLog } from "./runs/runs.ts";
import { ToolCalls } from "./runs/tool-calls.ts";
import { ChatStore } from "./store/chat-store.ts";
import { CommitLog, removeSegments } from "./store/commit-log.ts";
import { type Db, openDatabase } from "./store/db.ts";
import { AcceptedMessageIds } from "./store/message-ids.ts";
import { media } from "./store/schema.ts";
import { TranscriptWriter, transcriptPath } from "./store/transcript.ts";
import { startupMark } from "./startup-trace.ts";

export interface Gateway {
  readonly config: Config;
  readonly listeners: Listener[];
  readonly hub: Hub;
  /** Single-use WebSocket tokens: minted here, consumed by the handshake. */
  readonly wsTokens: SingleUseTokens;
  /** Tells every open connection the runtime model changed (blank names are ignored). */
  announceModel(modelName: string, modelPreset?: string): void;
  /** Orderly shutdown: stop accepting, let turns settle, close clients with 1001, flush, remove the socket. */
  stop(): Promise<void>;
}

/**
 * Builds the gateway behind listeners already bound (`agentgate serve` binds them
 * first, so /health answers during start-up), or binds them first itself. A
 * failed start stops the listeners again.
 */
export async function startGateway(config: Config, log: Logger, bound?: BoundListeners): Promise<Gateway> {
  const front = bound ?? (await bindListeners(config));
  try {
    return await buildGateway(config, log, front);
  } catch (e) {
    await front.abort();
    throw e;
  }
}

/** Coarsest mtime resolution among common file systems (FAT: 2 s). */
const MTIME_GRANULARITY_MS = 2000;

/** Orphaned media files and rows, and unclaimed uploads past their time, go; a failure is logged, never thrown. */
async function sweepMedia(library: MediaLibrary, orphansBeforeMs: number, unclaimedMs: number, log: Logger): Promise<void> {
  try {
    await library.sweep(orphansBeforeMs);
    await library.forgetUnclaimedUploads(unclaimedMs);
    startupMark("media swept");
  } catch (e) {
    log.error("media sweep failed", { error: String(e) });
  }
}

/** Builds the gateway; a failed build closes again what it had opened (newest first) before it rejects. */
async function buildGateway(config: Config, log: Logger, front: BoundListeners): Promise<Gateway> {
  const closeOnFailure: (() => unknown)[] = [];
  try {
    return await assembleGateway(config, log, front, closeOnFailure);
  } catch (e) {
    for (const close of closeOnFailure.reverse()) await Promise.resolve().then(close).catch(() => {});
    throw e;
  }
}

async function assembleGateway(config: Config, log: Logger, front: BoundListeners, closeOnFailure: (() => unknown)[]): Promise<Gateway> {
  startupMark("gateway loaded");
  const { listeners } = front;
  // Several gateways sharing one Redis: connected before anything is opened, so a node that cannot reach it
  // opens no store and its listeners stop again.
  const cluster = config.cluster_redis_url ? await connectCluster(config, log) : undefined;
  if (cluster) closeOnFailure.push(() => cluster.close());
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
  const transcriptsDir = join(config.data_dir, "transcripts");
  const transcriptFile = (chatId: string) => transcriptPath(transcriptsDir, chatId);

  // Storage: chat and turn rows in SQLite; events in the commit log (durable before visible), then per-chat JSONL transcripts.
  const db = openDatabase(join(config.data_dir, "agentgate.db"), config.sqlite_busy_timeout_ms);
  closeOnFailure.push(() => db.$client.close());
  startupMark("db open");
  // Their metadata of record on Postgres (migrated here), written behind; each node keeps its own SQLite too.
  const shared = config.store_postgres_url ? await openSharedMetadata(config, db, log) : undefined;
  if (shared) closeOnFailure.push(() => shared.close(0));
  const store = new ChatStore(db, config.agent, (e) => log.error("bookkeeping write failed; will retry", { error: String(e) }), shared);
  const logDir = join(config.data_dir, "commit-log");
  mkdirSync(transcriptsDir, { recursive: true, mode: 0o700 });
  // Clustered, a chat's Redis stream is its record: the local log may hold events Redis never took (killed
  // between the local write and the fenced append), so its leftovers are dropped; following a chat refills
  // from the stream whatever the transcript lacks (transcripts only ever hold events Redis took).
  const transcriptOptions = {
    dir: transcriptsDir,
    flushMs: config.transcript_flush_ms,
    maxLineBytes: config.transcript_max_line_bytes,
    maxOpenFiles: config.transcript_max_open_files,
    retryMs: config.transcript_retry_ms,
    log,
  };
  const recovered = cluster ? (removeSegments(logDir), 0) : await recoverTranscripts(logDir, transcriptOptions, (chatId) => store.deletedSeq(chatId));
  if (recovered > 0) log.info("recovered events from the commit log into transcripts", { events: recovered });
  startupMark("commit log recovered");
  const transcript = new TranscriptWriter({ ...transcriptOptions, onFlushed: (chatId, seq) => hub.flushed(chatId, seq) });
  const localStorage = new ChatStorage({
    store,
    log: new CommitLog({ dir: logDir, segmentBytes: config.commit_log_segment_bytes }),
    transcript,
    transcriptFile,
    fsync: config.transcript_fsync,
    retireBytes: config.commit_log_retire_bytes,
  });
  const messageIds = new AcceptedMessageIds(db, { maxIds: config.client_msg_id_memory, maxAgeMs: config.client_msg_id_max_age_s * 1000 });
  // In a cluster, each commit is also appended to Redis (fenced by the chat's lease) before it is revealed.
  const clusterNode =
    cluster &&
    new ClusterNode({
      connection: cluster,
      local: localStorage,
      config,
      mirror: (chatId, seq, frame, event) => hub.mirror(chatId, seq, frame, event),
      archive: shared?.archive,
      holdsRange: (chatId, first, last) => reader.holds(chatId, first, last),
      whenSettled: (fn) => hub.afterCommit(fn),
      readRange: (chatId, first, last) => reader.range(chatId, first, last, toClient),
      latestSeq: (chatId) => hub.latestSeq(chatId),
      busy: (chatId) => runs.activeTurn(chatId) !== undefined,
      localSubscribers: (chatId) => listeners.reduce((n, l) => n + l.server.subscriberCount(Hub.topicOf(chatId)), 0),
      continueAfter: (chatId, seq) => hub.continueAfter(chatId, seq),
      closeTurn: (chatId, turnId) => publishInterrupted(hub, chatId, turnId),
      runQueued: (chatId, message) => clients.runQueued(chatId, message),
      remember: (chatId, clientMsgId) => {
        try {
          store.ensure(chatId);
          messageIds.accept(chatId, clientMsgId);
        } catch (e) {
          log.error("could not record a mirrored client_msg_id", { chat_id: chatId, error: String(e) });
        }
      },
      runForwarded: (sender, frame) => clients.forwarded(sender, frame),
      publish: (message) => hub.publish(message),
      stop: (chatId) => runs.stop(chatId),
      log,
    });
  const storage = clusterNode ? clusterNode.storage : localStorage;
  closeOnFailure.push(() => storage.close());
  if (clusterNode) closeOnFailure.push(() => clusterNode.close());
  await clusterNode?.start();
  // Clustered: this node's capable devices, seen by every chat's writer (device tool calls).
  const devices: ClusterDevices | undefined = cluster && clusterNode && new ClusterDevices(cluster.redis, cluster.keys, clusterNode.nodeId, config.cluster_lease_ms, config.cluster_redis_command_timeout_ms, log);
  if (devices) closeOnFailure.push(() => devices.close());
  await devices?.start();

  // The hub: per-chat seq, one serialization, group commit, native fan-out.
  const hub: Hub = new Hub(
    storage,
    {
      maxEventBytes: config.transcript_max_line_bytes - 1,
      maxStagedBytes: config.storage_max_held_bytes,
      commitBatchBytes: config.commit_batch_bytes,
      retryMs: config.transcript_retry_ms,
      maxChats: config.chat_streams_max,
    },
    {
      busy: (chatId): boolean => runs.activeTurn(chatId) !== undefined,
      log: (level, msg, fields) => log[level](msg, fields),
      // Clustered: the chat's writer is another node; a turn started here before that was known writes nothing,
      // and the chat's clients here follow the new writer.
      disowned: (chatId) => {
        void runs.stopAndWait(chatId);
        clusterNode?.disowned(chatId);
      },
    },
  );
  const reader = new ChatReader(hub, transcriptFile, (chatId, from, through) => transcript.unwritten(chatId, from, through));
  closeInterruptedTurns(store, hub, log);

  // Media: files under <data_dir>/media with a row each, served by signed, expiring URLs; in a cluster with
  // cluster_media_dir, files and signing secret are that shared directory's, so every node serves every URL.
  const mediaHome = config.cluster_media_dir || config.data_dir;
  // The shared directory must be mounted before anything is created or swept in it (src/media/shared-dir.ts).
  const mediaDirProblem = config.cluster_media_dir ? sharedMediaDirProblem(config.cluster_media_dir, db.select({ id: media.id }).from(media).limit(1).get() !== undefined) : undefined;
  if (mediaDirProblem) throw new Error(mediaDirProblem);
  const signer = new MediaSigner(loadOrCreateSecret(secretFile(mediaHome)), config.media_url_ttl_s);
  const library = new MediaLibrary(join(mediaHome, "media"), db, signer, log, shared, config.cluster_media_dir ? config.media_unclaimed_upload_s * 1000 : undefined);
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
    { maxBytes: config.media_max_outbound_bytes, holdChars: config.stream_image_hold_chars },
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

  // Agents: their output (in turns and outside them) takes one path into chats; the history the LLM agent reads.
  const agentOutput = new AgentOutput({ hub, media: outbound, titles: store, announceModel, log });
  const readHistory = (chatId: string, throughSeq: number) => conversation(reader, chatId, throughSeq);
  const agents = new AgentRegistry(config, agentOutput.events, readHistory, log);

  // Runs: one active turn per chat, recorded in the store; device tool calls.
  const toolCalls: ToolCalls = new ToolCalls({
    hub,
    capableClients: (chatId, tool): number => clients.capableClients(chatId, tool),
    ...(devices && { elsewhere: { capable: (chatId: string, tool: string) => devices.capableElsewhere(chatId, tool), recheckMs: config.cluster_device_recheck_ms } }),
    defaultTimeoutMs: config.tool_call_timeout_ms,
    disconnectGraceMs: config.tool_disconnect_grace_ms,
  });
  const turnLog: TurnLog = {
    started: (turnId, chatId, startedMs) => store.turnStarted(turnId, chatId, new Date(startedMs)),
    ended: (turnId, _chatId, result, latencyMs) => store.turnEnded(turnId, result.status, latencyMs, result.error),
  };
  const runs = new Runs({
    hub,
    turnLog,
    toolCalls,
    output: agentOutput,
    agentFor: (chatId) => agents.get(store.agentOf(chatId) ?? config.agent) ?? agents.get(config.agent)!,
    streaming: config.streaming,
    maxQueuedTurns: config.max_queued_turns,
    log,
  });

  // Clients and HTTP. In a cluster, a token issued on one node is accepted on any (a single-use one once).
  const tokenStore = (kind: TokenKind) => {
    const local = new IssuedTokens(config.token_ttl_s * 1000, config.max_outstanding_tokens);
    return cluster ? new SharedTokens(cluster.redis, cluster.keys, kind, local, config.token_ttl_s * 1000) : local;
  };
  const singleUseTokens = tokenStore("ws");
  const apiTokens = tokenStore("api");
  const browserTokens = tokenStore("browser");
  const clients = new ClientSessions({
    hub,
    runs,
    chats: store,
    replay: { reader, bufferBytes: config.replay_buffer_bytes, toClient },
    toolCalls,
    inbound: new InboundMedia(library, mediaLimits),
    library,
    agentExists: (name) => agents.has(name),
    messageIds,
    ...(clusterNode && { placement: clusterNode }),
    ...(devices && { devices }),
    log,
  });
  const deleteChat = async (chatId: string) => {
    await runs.stopAndWait(chatId);
    // Forgotten first: nothing of the chat is revealed or written behind once its files go.
    hub.forget(chatId);
    await library.removeChat(chatId);
    await transcript.remove(chatId);
    store.delete(chatId);
  };
  // With shared metadata every node's sessions API reads Postgres; renames and deletes reach every node.
  const sharedSessions =
    shared &&
    cluster &&
    clusterNode &&
    new SharedSessions({
      shared,
      connection: cluster,
      nodeId: clusterNode.nodeId,
      store,
      hub,
      owns: (chatId) => clusterNode.storage.owns(chatId),
      writableHere: (chatId) => clusterNode.writableHere(chatId),
      numberedSeq: (chatId) => clusterNode.numberedSeq(chatId),
      deleteLocally: deleteChat,
      log,
    });
  await sharedSessions?.start();
  const sessions = sharedSessions ?? localSessions(store, hub, deleteChat);
  const trust = new TrustPolicy(config);
  let serving = false;
  const app = createHttpApp({
    config,
    trust,
    wsTokens: singleUseTokens,
    apiTokens,
    browserTokens,
    sessions: { directory: sessions, runs, reader, toClient, ...(clusterNode && { gather: (chatId: string) => clusterNode.follow(chatId) }) },
    chats: { hub, runs, maxTextBytes: config.max_message_bytes, ...(clusterNode && { placement: clusterNode }) },
    media: { signer, library, limits: mediaLimits },
    modelName: config.model_name || config.agent,
    agentNames: agents.names(),
    readiness: {
      ...readinessChecks({ db, agents, serving: () => serving }),
      // Unmounted while serving: this node's media and signed URLs are not the cluster's.
      ...(config.cluster_media_dir && { media: () => sharedMediaDirProblem(config.cluster_media_dir, true) }),
    },
    gauges: gatewayGauges({
      connections: () => listeners.map((l) => ({ listener: l.address, transport: l.transport, open: l.server.pendingWebSockets })),
      chatsActive: () => runs.activeCount(),
      chatStreams: () => hub.streamCount,
    }),
    log,
  });

  for (const l of listeners) hub.addListener(l.server);
  // Media housekeeping runs while serving, not before (start-up time): nothing of this process is older
  // than this cutoff, less a margin for file systems that keep mtime in whole seconds.
  const swept = sweepMedia(library, Date.now() - MTIME_GRANULARITY_MS, config.media_unclaimed_upload_s * 1000, log);
  front.serve(connectionHandlers({ config, app, clients, agents: agents.ws, wsTokens: singleUseTokens, trust, log }));
  startupMark("serving");
  serving = true;

  const stopOnce = async () => {
    serving = false;
    clusterNode?.stop();
    const stopped = listeners.map((l) => l.server.stop());
    await runs.settle(config.shutdown_grace_ms);
    await hub.whenVisible(config.shutdown_grace_ms);
    clients.closeAll(CLOSE_GOING_AWAY, GOING_AWAY_REASON);
    await agents.closeAll();
    await Promise.race([Promise.all(stopped), Bun.sleep(1000)]);
    for (const l of listeners) {
      l.server.stop(true);
      hub.removeListener(l.server);
      if (l.transport === "unix") rmSync(l.address, { force: true });
    }
    await hub.whenVisible(config.shutdown_grace_ms);
    await swept;
    store.flush();
    await devices?.close();
    await clusterNode?.close();
    await shared?.close(config.shutdown_grace_ms);
    await storage.close();
    hub.settle();
    cluster?.close();
    db.$client.close();
  };

  // A second stop (a test's cleanup after the test stopped it) waits for the first.
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= stopOnce());

  return { config, listeners, hub, wsTokens: singleUseTokens, announceModel, stop };
}

/** Opens the shared metadata; its faults are logged and counted, the writes retried. */
async function openSharedMetadata(config: Config, local: Db, log: Logger): Promise<SharedMetadata> {
  const options = { maxPending: config.store_postgres_max_pending, local, timeoutMs: config.store_postgres_timeout_ms };
  // Loaded only here: a single node never pays for the Postgres client at start-up.
  const { SharedMetadata } = await import("./store/shared-metadata.ts");
  return SharedMetadata.open(config.store_postgres_url, {
    failed: (error, dropped) => {
      metrics.storageFault("shared_metadata");
      if (dropped) log.error("PostgreSQL refused a metadata write; it is dropped", { error: String(error) });
      else log.error("metadata write to PostgreSQL failed; will retry", { error: String(error) });
    },
    recovered: () => log.info("metadata writes to PostgreSQL go through again"),
    overflowed: () => {
      metrics.storageFault("shared_metadata");
      log.error("too many metadata writes wait for PostgreSQL; this node's rows will be copied to it once it answers", { max: config.store_postgres_max_pending });
    },
  }, options);
}
