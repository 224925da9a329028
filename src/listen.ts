/**
 * Listeners: one Bun.serve per transport (TCP ws/wss, unix socket), all sharing
 * one WebSocket handler and one HTTP app. The upgrade decision lives here: an
 * upgrade request on the configured path is authorized and upgraded; every
 * other request goes to the Hono app (so an upgrade to another path gets 404).
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Server, WebSocketHandler } from "bun";
import type { Hono } from "hono";
import { authorizeHandshake } from "./auth/handshake.ts";
import type { IssuedTokens } from "./auth/issued-tokens.ts";
import { clientConnectionData, type ClientData } from "./clients/session.ts";
import { type Config, normalizePath } from "./config.ts";

export interface Listener {
  server: Server<ClientData>;
  transport: "tcp" | "unix";
  /** ws:// or wss:// for TCP; the socket path for unix. */
  address: string;
}

export interface ListenDeps {
  config: Config;
  app: Hono;
  websocket: WebSocketHandler<ClientData>;
  tokens: IssuedTokens;
}

const BUN_MAX_IDLE_TIMEOUT_S = 960;

function isWebSocketUpgrade(req: Request): boolean {
  return (
    (req.headers.get("upgrade") ?? "").toLowerCase().includes("websocket") &&
    (req.headers.get("connection") ?? "").toLowerCase().includes("upgrade")
  );
}

function fetchHandler({ config, app, tokens }: ListenDeps, transport: Listener["transport"]) {
  return async (req: Request, server: Server<ClientData>): Promise<Response | undefined> => {
    const url = URL.parse(req.url);
    if (!url) return new Response("Bad Request", { status: 400 });
    if (!isWebSocketUpgrade(req) || normalizePath(url.pathname) !== config.path) return app.fetch(req, server);
    const outcome = await authorizeHandshake(url, config, tokens);
    if (!outcome.ok) return new Response(outcome.body, { status: outcome.status, headers: { "content-type": "text/plain; charset=utf-8" } });
    const remote = transport === "unix" ? "" : (server.requestIP(req)?.address ?? "");
    const data = clientConnectionData(url, remote, transport === "unix");
    return server.upgrade(req, { data }) ? undefined : new Response("WebSocket upgrade failed", { status: 400 });
  };
}

/** Socket options derived from config: nanobot's ping interval + timeout become Bun's idle timeout. */
function socketOptions(config: Config, websocket: WebSocketHandler<ClientData>): WebSocketHandler<ClientData> {
  return {
    ...websocket,
    maxPayloadLength: config.max_message_bytes,
    idleTimeout: Math.min(config.ping_interval_s + config.ping_timeout_s, BUN_MAX_IDLE_TIMEOUT_S),
    sendPings: true,
    backpressureLimit: config.backpressure_limit_bytes,
    closeOnBackpressureLimit: config.close_on_backpressure_limit,
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

function serveUnix(path: string, deps: ListenDeps): Server<ClientData> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // The socket is created under this umask, so it is 0600 from its first instant.
  const previous = process.umask(0o177);
  try {
    return Bun.serve<ClientData>({ unix: path, fetch: fetchHandler(deps, "unix"), websocket: socketOptions(deps.config, deps.websocket) });
  } finally {
    process.umask(previous);
    chmodSync(path, 0o600);
  }
}

function serveTcp(deps: ListenDeps): Server<ClientData> {
  const { config } = deps;
  const tls = config.ssl_certfile ? { cert: Bun.file(config.ssl_certfile), key: Bun.file(config.ssl_keyfile) } : undefined;
  return Bun.serve<ClientData>({
    hostname: config.host,
    port: config.port,
    tls,
    fetch: fetchHandler(deps, "tcp"),
    websocket: socketOptions(config, deps.websocket),
  });
}

function tcpAddress(server: Server<ClientData>, config: Config): string {
  const scheme = config.ssl_certfile ? "wss" : "ws";
  const host = server.hostname?.includes(":") ? `[${server.hostname}]` : server.hostname;
  return `${scheme}://${host}:${server.port}${config.path}`;
}

export async function startListeners(deps: ListenDeps): Promise<Listener[]> {
  const { config } = deps;
  const listeners: Listener[] = [];
  try {
    if (config.tcp_enabled) {
      const server = serveTcp(deps);
      listeners.push({ server, transport: "tcp", address: tcpAddress(server, config) });
    }
    if (config.unix_socket_path) {
      await clearStaleSocket(config.unix_socket_path);
      listeners.push({ server: serveUnix(config.unix_socket_path, deps), transport: "unix", address: config.unix_socket_path });
    }
  } catch (e) {
    await Promise.all(listeners.map((l) => l.server.stop(true)));
    throw e;
  }
  return listeners;
}
