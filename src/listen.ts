/**
 * Listeners: one Bun.serve per transport (TCP ws/wss, unix socket), all sharing
 * one WebSocket handler and one HTTP app. The upgrade decision lives here: an
 * upgrade request on the configured path is authorized (Origin, then identity
 * and credential, with the peer's local trust from auth/peer.ts) and upgraded;
 * every other request goes to the Hono app with its peer (so an upgrade to
 * another path gets 404). Declared bodies over the derived limit stop here.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { Hono } from "hono";
import type { AgentConnData, AgentSocket, WsAgents } from "./agents/ws-agents.ts";
import { agentAuthorized } from "./auth/agent-credential.ts";
import { authorizeHandshake } from "./auth/handshake.ts";
import type { SingleUseTokens } from "./auth/issued-tokens.ts";
import type { Peer, TrustPolicy } from "./auth/peer.ts";
import type { ClientData, ClientSocket } from "./clients/client-socket.ts";
import { type ClientSessions, clientConnectionData } from "./clients/session.ts";
import { replyError } from "./clients/replies.ts";
import { SlowConsumers } from "./clients/slow-consumers.ts";
import { type Config, normalizePath } from "./config.ts";
import { refusal } from "./http/refusal.ts";
import { metrics } from "./metrics/metrics.ts";
import type { RequestEnv } from "./http/request-env.ts";
import type { Logger } from "./log.ts";
import { CLOSE_INTERNAL_ERROR, INTERNAL_ERROR } from "./protocol/errors.ts";

/** Per-connection state: a client, or an agent connecting in. */
export type ConnData = ClientData | AgentConnData;

export interface Listener {
  server: Server<ConnData>;
  transport: "tcp" | "unix";
  /** ws:// or wss:// for TCP; the socket path for unix. */
  address: string;
}

export interface ListenDeps {
  config: Config;
  app: Hono;
  clients: ClientSessions;
  agents: WsAgents;
  wsTokens: SingleUseTokens;
  trust: TrustPolicy;
  log: Logger;
}

const BUN_MAX_IDLE_TIMEOUT_S = 960;

function isWebSocketUpgrade(req: Request): boolean {
  return (
    (req.headers.get("upgrade") ?? "").toLowerCase().includes("websocket") &&
    (req.headers.get("connection") ?? "").toLowerCase().includes("upgrade")
  );
}

/** Multipart framing around the largest accepted file (boundaries, part headers, a few small fields). */
const MULTIPART_OVERHEAD = 64 * 1024;

/**
 * The largest request body any route accepts, derived from the media and frame
 * limits. A request declaring more is answered here with JSON 413; bodies that
 * stream without a length are bounded by each route's own reader. Bun's own
 * limit is lifted above it, because Bun answers its 413 before any handler
 * runs, with an empty body.
 */
export function requestBodyLimit(config: Config): number {
  return Math.max(config.media_max_image_bytes, config.media_max_video_bytes, config.max_message_bytes) + MULTIPART_OVERHEAD;
}

const upgradeFailed = () => refusal(400, "Bad Request", "WebSocket upgrade failed");

/** A client upgrade: Origin, then identity and credential (auth/handshake.ts), then the connection's state. */
async function upgradeClient(req: Request, url: URL, peer: Peer, server: Server<ConnData>, { config, wsTokens, trust }: ListenDeps): Promise<Response | undefined> {
  const originRefused = trust.originRefusal(req);
  if (originRefused !== undefined) {
    metrics.authFailed("origin");
    return refusal(403, "Forbidden", originRefused);
  }
  const localRefused = trust.localRefusal(req, peer);
  const outcome = await authorizeHandshake(url, config, wsTokens, localRefused);
  if (!outcome.ok) return refusal(outcome.status, outcome.error, outcome.reason);
  const data = clientConnectionData(url, { remote: peer.address, local: localRefused === undefined, viaUnixSocket: peer.viaUnixSocket }, outcome.identity);
  return server.upgrade(req, { data }) ? undefined : upgradeFailed();
}

function fetchHandler(deps: ListenDeps, transport: Listener["transport"]) {
  const { config, app, agents, trust } = deps;
  const bodyLimit = requestBodyLimit(config);
  return async (req: Request, server: Server<ConnData>): Promise<Response | undefined> => {
    const url = URL.parse(req.url);
    if (!url) return refusal(400, "Bad Request", "the request URL does not parse");
    if (Number(req.headers.get("content-length") ?? 0) > bodyLimit) return refusal(413, "Payload Too Large", `request bodies are limited to ${bodyLimit} bytes`);
    const peer = trust.peer(req, transport === "unix" ? undefined : (server.requestIP(req)?.address ?? ""));
    const path = isWebSocketUpgrade(req) ? normalizePath(url.pathname) : undefined;
    if (path === config.agent_path && agents.configured) {
      if (!agentAuthorized(req, url, config.agent_token)) {
        metrics.authFailed("agent_token");
        return refusal(401, "Unauthorized", "the agent credential is missing or wrong");
      }
      const data: AgentConnData = { role: "agent" };
      return server.upgrade(req, { data }) ? undefined : upgradeFailed();
    }
    if (path === config.path) return upgradeClient(req, url, peer, server, deps);
    const env: RequestEnv = { peer, port: transport === "tcp" ? server.port : undefined };
    return app.fetch(req, env);
  };
}

/**
 * Every socket callback runs inside a boundary: a throw (a storage error, a bug)
 * is logged with the connection's context and never reaches Bun, where it would
 * end the process. A failed frame is answered with an error event and the
 * connection stays up; a failed open leaves the connection in an unknown state,
 * so it is closed with 1011 and the client reconnects.
 */
function guarded<A extends unknown[]>(log: Logger, callback: string, run: (ws: ServerWebSocket<ConnData>, ...args: A) => void, recover?: (ws: ServerWebSocket<ConnData>) => void) {
  return (ws: ServerWebSocket<ConnData>, ...args: A): void => {
    try {
      run(ws, ...args);
    } catch (e) {
      const who = ws.data.role === "client" ? { client_id: ws.data.clientId } : { agent: true };
      log.error("socket handler failed", { callback, ...who, error: e instanceof Error ? e.message : String(e) });
      try {
        recover?.(ws);
      } catch {
        // The socket is already gone; nothing more to tell it.
      }
    }
  };
}

const answerInternalError = (ws: ServerWebSocket<ConnData>) => {
  if (ws.data.role === "client") replyError(ws as ClientSocket, { detail: INTERNAL_ERROR });
};
const closeInternalError = (ws: ServerWebSocket<ConnData>) => ws.close(CLOSE_INTERNAL_ERROR, INTERNAL_ERROR);

/** One handler for every socket, dispatching on its role; client sockets are watched for slow reading. */
function connectionHandler(clients: ClientSessions, agents: WsAgents, slow: SlowConsumers, log: Logger): WebSocketHandler<ConnData> {
  const asClient = (ws: ServerWebSocket<ConnData>) => ws as ClientSocket;
  const asAgent = (ws: ServerWebSocket<ConnData>) => ws as AgentSocket;
  return {
    open: guarded(
      log,
      "open",
      (ws) => {
        if (ws.data.role === "agent") return agents.handler.open(asAgent(ws));
        slow.watch(asClient(ws));
        clients.handler.open(asClient(ws));
      },
      closeInternalError,
    ),
    message: guarded(
      log,
      "message",
      (ws, m: string | Buffer<ArrayBuffer>) => (ws.data.role === "agent" ? agents.handler.message(asAgent(ws), m) : clients.handler.message(asClient(ws), m)),
      answerInternalError,
    ),
    drain: guarded(log, "drain", (ws) => (ws.data.role === "client" ? clients.handler.drain(asClient(ws)) : undefined)),
    close: guarded(log, "close", (ws, code: number, reason: string) => {
      if (ws.data.role === "agent") return agents.handler.close(asAgent(ws), code, reason);
      slow.forget(asClient(ws));
      clients.handler.close(asClient(ws), code, reason);
    }),
  };
}

/**
 * Socket options derived from config: nanobot's ping interval + timeout become Bun's idle timeout.
 * At Bun's backpressure limit the socket is always closed, never left to drop frames silently
 * (see clients/slow-consumers.ts for the policy that normally acts first).
 */
function socketOptions(deps: ListenDeps, slow: SlowConsumers): WebSocketHandler<ConnData> {
  const { config } = deps;
  return {
    ...connectionHandler(deps.clients, deps.agents, slow, deps.log),
    maxPayloadLength: config.max_message_bytes,
    idleTimeout: Math.min(config.ping_interval_s + config.ping_timeout_s, BUN_MAX_IDLE_TIMEOUT_S),
    sendPings: true,
    backpressureLimit: config.backpressure_limit_bytes,
    closeOnBackpressureLimit: true,
    perMessageDeflate: false,
    publishToSelf: false,
  };
}

async function socketAnswers(path: string): Promise<boolean> {
  try {
    const socket = await Bun.connect({ unix: path, socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    return false;
  }
}

/** Removes a socket file left by a crashed instance; refuses to touch anything else or a live socket. */
async function clearStaleSocket(path: string): Promise<void> {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new Error(`unix_socket_path ${path} exists and is not a socket`);
  if (await socketAnswers(path)) throw new Error(`another instance is listening on ${path}`);
  unlinkSync(path);
}

function serveUnix(path: string, deps: ListenDeps, websocket: WebSocketHandler<ConnData>): Server<ConnData> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // The socket is created under this umask, so it is 0600 from its first instant.
  const previous = process.umask(0o177);
  try {
    return Bun.serve<ConnData>({ unix: path, fetch: fetchHandler(deps, "unix"), websocket, maxRequestBodySize: Number.MAX_SAFE_INTEGER });
  } finally {
    process.umask(previous);
    chmodSync(path, 0o600);
  }
}

function serveTcp(deps: ListenDeps, websocket: WebSocketHandler<ConnData>): Server<ConnData> {
  const { config } = deps;
  const tls = config.ssl_certfile ? { cert: Bun.file(config.ssl_certfile), key: Bun.file(config.ssl_keyfile) } : undefined;
  return Bun.serve<ConnData>({
    hostname: config.host,
    port: config.port,
    tls,
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    fetch: fetchHandler(deps, "tcp"),
    websocket,
  });
}

function tcpAddress(server: Server<ConnData>, config: Config): string {
  const scheme = config.ssl_certfile ? "wss" : "ws";
  const host = server.hostname?.includes(":") ? `[${server.hostname}]` : server.hostname;
  return `${scheme}://${host}:${server.port}${config.path}`;
}

export async function startListeners(deps: ListenDeps): Promise<Listener[]> {
  const { config } = deps;
  const listeners: Listener[] = [];
  const slow = new SlowConsumers({ maxBytes: config.slow_consumer_bytes, checkMs: config.slow_consumer_check_ms, log: deps.log });
  const websocket = socketOptions(deps, slow);
  try {
    if (config.tcp_enabled) {
      const server = serveTcp(deps, websocket);
      listeners.push({ server, transport: "tcp", address: tcpAddress(server, config) });
    }
    if (config.unix_socket_path) {
      await clearStaleSocket(config.unix_socket_path);
      listeners.push({ server: serveUnix(config.unix_socket_path, deps, websocket), transport: "unix", address: config.unix_socket_path });
    }
  } catch (e) {
    await Promise.all(listeners.map((l) => l.server.stop(true)));
    throw e;
  }
  return listeners;
}
