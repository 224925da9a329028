/**
 * Listeners: one Bun.serve per transport (TCP ws/wss, unix socket), bound first
 * thing at start so the liveness probe answers while the rest of the gateway is
 * still being built (issue #16: start-up time). Until the gateway hands over its
 * handlers (`serve`), GET /health answers 200 here and every other request waits
 * for them, bounded in number and time (startup_waiting_max, startup_wait_ms);
 * after that every request and socket goes to them (connections.ts).
 * This file imports nothing heavy: `agentgate serve` loads it before the server.
 * Not even node:fs and node:path, which only a unix socket needs: loading them is start-up time.
 */
import type { Server, WebSocketHandler } from "bun";
import type { Config } from "./config.ts";
import type { ConnData } from "./connections.ts";
import { refusal } from "./http/refusal.ts";
import { nodeFs, nodePath } from "./lazy-node.ts";

export type Transport = "tcp" | "unix";

export interface Listener {
  server: Server<ConnData>;
  transport: Transport;
  /** ws:// or wss:// for TCP; the socket path for unix. */
  address: string;
}

export type FetchHandler = (req: Request, server: Server<ConnData>) => Promise<Response | undefined> | Response | undefined;
export type SocketCallbacks = Required<Pick<WebSocketHandler<ConnData>, "open" | "message" | "drain" | "close">>;

/** What the gateway answers with: one fetch handler per transport, one set of socket callbacks. */
export interface ConnectionHandlers {
  fetch: Record<Transport, FetchHandler>;
  socket: SocketCallbacks;
}

export interface BoundListeners {
  readonly listeners: Listener[];
  /** From now on every request and socket goes to these handlers, the requests that waited for them too. */
  serve(handlers: ConnectionHandlers): void;
  /** The gateway did not start: waiting requests get 503, the listeners stop and the unix socket file goes. */
  abort(): Promise<void>;
  /** Requests waiting for `serve` now. */
  readonly waiting: number;
}

const BUN_MAX_IDLE_TIMEOUT_S = 960;
/** How long a failed start waits for the requests that were waiting to be answered. */
const ABORT_GRACE_MS = 1000;

/** The liveness answer: the process is up and its HTTP listener accepts (what /health means, before and after start). */
const isLivenessProbe = (req: Request) => req.method === "GET" && URL.parse(req.url)?.pathname === "/health";

const notServing = (reason: string, retryAfterS?: number) => {
  const res = refusal(503, "Service Unavailable", reason);
  if (retryAfterS !== undefined) res.headers.set("Retry-After", String(retryAfterS));
  return res;
};
const STARTING_RETRY_AFTER_S = 1;


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
    stat = nodeFs().lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new Error(`unix_socket_path ${path} exists and is not a socket`);
  if (await socketAnswers(path)) throw new Error(`another instance is listening on ${path}`);
  nodeFs().unlinkSync(path);
}

/**
 * Socket options derived from config: nanobot's ping interval + timeout become Bun's idle timeout.
 * At Bun's backpressure limit the socket is always closed, never left to drop frames silently
 * (see clients/slow-consumers.ts for the policy that normally acts first).
 */
function socketOptions(config: Config, callbacks: SocketCallbacks): WebSocketHandler<ConnData> {
  return {
    ...callbacks,
    maxPayloadLength: config.max_message_bytes,
    idleTimeout: Math.min(config.ping_interval_s + config.ping_timeout_s, BUN_MAX_IDLE_TIMEOUT_S),
    sendPings: true,
    backpressureLimit: config.backpressure_limit_bytes,
    closeOnBackpressureLimit: true,
    perMessageDeflate: false,
    publishToSelf: false,
  };
}

// Bun's own body limit is lifted: connections.ts answers a declared oversize body with JSON 413.
const NO_BUN_BODY_LIMIT = Number.MAX_SAFE_INTEGER;

function serveUnix(path: string, fetch: FetchHandler, websocket: WebSocketHandler<ConnData>): Server<ConnData> {
  const { chmodSync, mkdirSync } = nodeFs();
  const { dirname } = nodePath();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // The socket is created under this umask, so it is 0600 from its first instant.
  const previous = process.umask(0o177);
  try {
    return Bun.serve<ConnData>({ unix: path, fetch, websocket, maxRequestBodySize: NO_BUN_BODY_LIMIT });
  } finally {
    process.umask(previous);
    chmodSync(path, 0o600);
  }
}

function serveTcp(config: Config, fetch: FetchHandler, websocket: WebSocketHandler<ConnData>): Server<ConnData> {
  const tls = config.ssl_certfile ? { cert: Bun.file(config.ssl_certfile), key: Bun.file(config.ssl_keyfile) } : undefined;
  return Bun.serve<ConnData>({ hostname: config.host, port: config.port, tls, maxRequestBodySize: NO_BUN_BODY_LIMIT, fetch, websocket });
}

function tcpAddress(server: Server<ConnData>, config: Config): string {
  const scheme = config.ssl_certfile ? "wss" : "ws";
  const host = server.hostname?.includes(":") ? `[${server.hostname}]` : server.hostname;
  return `${scheme}://${host}:${server.port}${config.path}`;
}

async function stopAll(listeners: Listener[]): Promise<void> {
  await Promise.all(listeners.map((l) => l.server.stop(true)));
  for (const l of listeners) if (l.transport === "unix") nodeFs().rmSync(l.address, { force: true });
}

/** Binds every configured listener; see BoundListeners for what they answer before and after `serve`. */
export async function bindListeners(config: Config): Promise<BoundListeners> {
  let handlers: ConnectionHandlers | undefined;
  const handedOver = Promise.withResolvers<ConnectionHandlers | undefined>();
  let waiting = 0;
  /** Until `serve`: a bounded number of requests wait, each for a bounded time; one whose client left is not handed over. */
  const waitForHandlers = async (req: Request, server: Server<ConnData>, transport: Transport): Promise<Response | undefined> => {
    if (waiting >= config.startup_waiting_max) return notServing("the gateway is starting and too many requests are waiting", STARTING_RETRY_AFTER_S);
    waiting++;
    let timer: Timer | undefined;
    const timedOut = new Promise<"timed out">((resolve) => (timer = setTimeout(() => resolve("timed out"), config.startup_wait_ms)));
    try {
      const given = await Promise.race([handedOver.promise, timedOut]);
      if (given === "timed out") return notServing("the gateway is still starting", STARTING_RETRY_AFTER_S);
      if (!given) return notServing("the gateway is not serving");
      return req.signal.aborted ? notServing("the client left while the gateway was starting") : given.fetch[transport](req, server);
    } finally {
      clearTimeout(timer);
      waiting--;
    }
  };
  const front = (transport: Transport): FetchHandler => (req, server) => {
    if (handlers) return handlers.fetch[transport](req, server);
    if (isLivenessProbe(req)) return Response.json({ ok: true });
    return waitForHandlers(req, server, transport);
  };
  // Sockets exist only after an upgrade, which only the handed-over fetch handlers do.
  const websocket = socketOptions(config, {
    open: (ws) => handlers!.socket.open(ws),
    message: (ws, m) => handlers!.socket.message(ws, m),
    drain: (ws) => handlers!.socket.drain(ws),
    close: (ws, code, reason) => handlers!.socket.close(ws, code, reason),
  });
  const listeners: Listener[] = [];
  try {
    if (config.tcp_enabled) {
      const server = serveTcp(config, front("tcp"), websocket);
      listeners.push({ server, transport: "tcp", address: tcpAddress(server, config) });
    }
    if (config.unix_socket_path) {
      await clearStaleSocket(config.unix_socket_path);
      listeners.push({ server: serveUnix(config.unix_socket_path, front("unix"), websocket), transport: "unix", address: config.unix_socket_path });
    }
  } catch (e) {
    await stopAll(listeners);
    throw e;
  }
  return {
    listeners,
    serve(given) {
      handlers = given;
      handedOver.resolve(given);
    },
    async abort() {
      handedOver.resolve(undefined);
      // A graceful stop first, so the waiting requests get their 503 written (bounded: a client may not read it).
      await Promise.race([Promise.all(listeners.map((l) => l.server.stop())), Bun.sleep(ABORT_GRACE_MS)]);
      await stopAll(listeners);
    },
    get waiting() {
      return waiting;
    },
  };
}
