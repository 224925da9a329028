/**
 * The composition root: builds every part, wires them together and starts the
 * listeners; `stop` takes them down in order. Read it top to bottom to see the
 * whole gateway.
 */
import { mkdirSync, rmSync } from "node:fs";
import { createEchoAgent } from "./agents/echo.ts";
import { IssuedTokens } from "./auth/issued-tokens.ts";
import { ClientSessions } from "./clients/session.ts";
import type { Config } from "./config.ts";
import { createHttpApp } from "./http/app.ts";
import { Hub } from "./hub.ts";
import { type Listener, startListeners } from "./listen.ts";
import type { Logger } from "./log.ts";
import type { RuntimeModelUpdated } from "./protocol/events.ts";
import { Runs } from "./runs/runs.ts";
import { MemoryChatMetadata } from "./store/chat-metadata.ts";

/** WebSocket close code for "going away": clients reconnect elsewhere or later. */
const CLOSE_GOING_AWAY = 1001;

export interface Gateway {
  readonly config: Config;
  readonly listeners: Listener[];
  readonly hub: Hub;
  readonly tokens: IssuedTokens;
  /** Tells every open connection the runtime model changed (blank names are ignored). */
  announceModel(modelName: string, modelPreset?: string): void;
  /** Orderly shutdown: stop accepting, let turns settle, close clients with 1001, remove the socket. */
  stop(): Promise<void>;
}

export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });

  const hub = new Hub();
  const tokens = new IssuedTokens(config.token_ttl_s * 1000, config.max_outstanding_tokens);
  const echo = createEchoAgent({ chunkSize: config.echo_chunk_size, repeat: config.echo_repeat, delayMs: config.echo_delay_ms });
  const runs = new Runs({ hub, agentFor: () => echo, streaming: config.streaming, maxQueuedTurns: config.max_queued_turns, log });
  const clients = new ClientSessions({ hub, runs, chats: new MemoryChatMetadata(), log });
  const app = createHttpApp({ config, tokens, log });

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
  };

  return { config, listeners, hub, tokens, announceModel, stop };
}
