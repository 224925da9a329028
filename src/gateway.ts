/**
 * The composition root: builds every part, wires them together and starts the
 * listeners; `stop` takes them down in order. Read it top to bottom to see the
 * whole gateway.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createEchoAgent } from "./agents/echo.ts";
import { IssuedTokens } from "./auth/issued-tokens.ts";
import { ClientSessions } from "./clients/session.ts";
import type { Config } from "./config.ts";
import { createHttpApp } from "./http/app.ts";
import { Hub } from "./hub.ts";
import { type Listener, startListeners } from "./listen.ts";
import type { Logger } from "./log.ts";
import type { RuntimeModelUpdated } from "./protocol/events.ts";
import { closeInterruptedTurns } from "./runs/recover.ts";
import { Runs, type TurnLog } from "./runs/runs.ts";
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

  // Agents and runs: one active turn per chat, recorded in the store.
  const echo = createEchoAgent({ chunkSize: config.echo_chunk_size, repeat: config.echo_repeat, delayMs: config.echo_delay_ms });
  const turnLog: TurnLog = {
    started: (turnId, chatId, startedMs) => store.turnStarted(turnId, chatId, new Date(startedMs)),
    ended: (turnId, chatId, result, latencyMs) => {
      store.turnEnded(turnId, result.status, latencyMs, result.error);
      void transcript.flushChat(chatId);
    },
  };
  const runs = new Runs({ hub, turnLog, agentFor: () => echo, streaming: config.streaming, maxQueuedTurns: config.max_queued_turns, log });

  // Clients and HTTP.
  const transcriptFile = (chatId: string) => transcriptPath(transcriptsDir, chatId);
  const tokens = new IssuedTokens(config.token_ttl_s * 1000, config.max_outstanding_tokens);
  const apiTokens = new IssuedTokens(config.token_ttl_s * 1000, config.max_outstanding_tokens);
  const clients = new ClientSessions({ hub, runs, chats: store, replay: { hub, transcriptFile, bufferBytes: config.replay_buffer_bytes }, log });
  const deleteChat = async (chatId: string) => {
    await runs.stopAndWait(chatId);
    await transcript.remove(chatId);
    store.delete(chatId);
    hub.forget(chatId);
  };
  const app = createHttpApp({
    config,
    wsTokens: tokens,
    apiTokens,
    sessions: { store, hub, runs, transcriptFile, deleteChat },
    modelName: config.model_name || echo.name,
    log,
  });

  const listeners = await startListeners({ config, app, websocket: clients.handler, tokens });
  for (const l of listeners) hub.addListener(l.server);

  const announceModel = (modelName: string, modelPreset?: string) => {
    const name = modelName.trim();
    if (name === "") return;
    const frame: RuntimeModelUpdated = { event: "runtime_model_updated", model_name: name };
    if (modelPreset?.trim()) frame.model_preset = modelPreset.trim();
    hub.broadcast(frame);
  };

  const stop = async () => {
    const stopped = listeners.map((l) => l.server.stop());
    await runs.settle(config.shutdown_grace_ms);
    clients.closeAll(CLOSE_GOING_AWAY, "server shutting down");
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
