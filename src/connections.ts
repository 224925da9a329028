/**
 * What the listeners do with each request and socket once the gateway is up.
 * The upgrade decision: an upgrade request on the configured path is authorized
 * (Origin, then identity and credential, with the peer's local trust from
 * auth/peer.ts) and upgraded; every other request goes to the Hono app with its
 * peer (so an upgrade to another path gets 404). Declared bodies over the derived
 * limit stop here. And the one error boundary every socket callback runs in.
 */
import type { Server, ServerWebSocket } from "bun";
import type { Hono } from "hono";
import { type AgentConnData, type AgentSocket, answerAgentFrameFailed, type WsAgents } from "./agents/ws-agents.ts";
import { agentAuthorized } from "./auth/agent-credential.ts";
import { authorizeHandshake } from "./auth/handshake.ts";
import type { SingleUseTokens } from "./auth/issued-tokens.ts";
import type { Peer, TrustPolicy } from "./auth/peer.ts";
import type { ClientData, ClientSocket } from "./clients/client-socket.ts";
import { type ClientSessions, clientConnectionData } from "./clients/session.ts";
import { replyError } from "./clients/replies.ts";
import { SlowConsumers } from "./clients/slow-consumers.ts";
import type { Config } from "./config.ts";
import { normalizePath } from "./config-rules.ts";
import { refusal } from "./http/refusal.ts";
import type { RequestEnv } from "./http/request-env.ts";
import type { ConnectionHandlers, FetchHandler, SocketCallbacks, Transport } from "./listen.ts";
import type { Logger } from "./log.ts";
import { metrics } from "./metrics/metrics.ts";
import { CLOSE_INTERNAL_ERROR, INTERNAL_ERROR } from "./protocol/errors.ts";

/** Per-connection state: a client, or an agent connecting in. */
export type ConnData = ClientData | AgentConnData;

export interface ConnectionDeps {
  config: Config;
  app: Hono;
  clients: ClientSessions;
  agents: WsAgents;
  wsTokens: SingleUseTokens;
  trust: TrustPolicy;
  log: Logger;
}

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
 * limit is lifted above it (listen.ts), because Bun answers its 413 before any
 * handler runs, with an empty body.
 */
export function requestBodyLimit(config: Config): number {
  return Math.max(config.media_max_image_bytes, config.media_max_video_bytes, config.max_message_bytes) + MULTIPART_OVERHEAD;
}

const upgradeFailed = () => refusal(400, "Bad Request", "WebSocket upgrade failed");

/** A client upgrade: Origin, then identity and credential (auth/handshake.ts), then the connection's state. */
async function upgradeClient(req: Request, url: URL, peer: Peer, server: Server<ConnData>, { config, wsTokens, trust }: ConnectionDeps): Promise<Response | undefined> {
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

function fetchHandler(deps: ConnectionDeps, transport: Transport): FetchHandler {
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
 * The one error boundary of every socket callback, clients' and agents' alike: a
 * throw (a storage error, a bug) is logged once with the connection's context and
 * never reaches Bun, where it would end the process. A failed frame is answered
 * with an error (an error event to a client, an error frame to an agent) and the
 * connection stays up; a failed open leaves the connection in an unknown state,
 * so it is closed with 1011 (CLOSE_INTERNAL_ERROR) and the peer reconnects.
 */
function guarded<A extends unknown[]>(log: Logger, callback: string, run: (ws: ServerWebSocket<ConnData>, ...args: A) => void, recover?: (ws: ServerWebSocket<ConnData>) => void) {
  return (ws: ServerWebSocket<ConnData>, ...args: A): void => {
    try {
      run(ws, ...args);
    } catch (e) {
      const who = ws.data.role === "client" ? { client_id: ws.data.clientId } : { agent: ws.data.name ?? "(before hello)" };
      log.error("socket handler failed", { callback, ...who, error: e instanceof Error ? e.message : String(e) });
      try {
        recover?.(ws);
      } catch {
        // The socket is already gone; nothing more to tell it.
      }
    }
  };
}

const asClient = (ws: ServerWebSocket<ConnData>) => ws as ClientSocket;
const asAgent = (ws: ServerWebSocket<ConnData>) => ws as AgentSocket;

const answerFrameFailed = (ws: ServerWebSocket<ConnData>) => {
  if (ws.data.role === "client") replyError(asClient(ws), { detail: INTERNAL_ERROR });
  else answerAgentFrameFailed(asAgent(ws));
};
const closeInternalError = (ws: ServerWebSocket<ConnData>) => ws.close(CLOSE_INTERNAL_ERROR, INTERNAL_ERROR);

/** One set of callbacks for every socket, dispatching on its role; client sockets are watched for slow reading. */
function socketCallbacks(clients: ClientSessions, agents: WsAgents, slow: SlowConsumers, log: Logger): SocketCallbacks {
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
      answerFrameFailed,
    ),
    drain: guarded(log, "drain", (ws) => (ws.data.role === "client" ? clients.handler.drain(asClient(ws)) : undefined)),
    close: guarded(log, "close", (ws, code: number, reason: string) => {
      if (ws.data.role === "agent") return agents.handler.close(asAgent(ws), code, reason);
      slow.forget(asClient(ws));
      clients.handler.close(asClient(ws), code, reason);
    }),
  };
}

/** The gateway's handlers for the listeners (listen.ts hands requests and sockets to them once they are given). */
export function connectionHandlers(deps: ConnectionDeps): ConnectionHandlers {
  const { config, log } = deps;
  const slow = new SlowConsumers({ maxBytes: config.slow_consumer_bytes, checkMs: config.slow_consumer_check_ms, log });
  return {
    fetch: { tcp: fetchHandler(deps, "tcp"), unix: fetchHandler(deps, "unix") },
    socket: socketCallbacks(deps.clients, deps.agents, slow, log),
  };
}
