/**
 * Test harness: real gateways on port 0 and unix sockets in temp dirs, real
 * WebSocket clients, real HTTP. Nothing here stands in for gateway code.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConfigInput, resolveConfig } from "../src/config.ts";
import { type Gateway, startGateway } from "../src/gateway.ts";
import { createLogger, type Logger } from "../src/log.ts";
import { onCleanup } from "./cleanup.ts";

export type Transport = "tcp" | "unix";
export const TRANSPORTS: Transport[] = ["tcp", "unix"];
export const REPO_ROOT = join(import.meta.dir, "..");
export const BUN = process.execPath;
export const BINARY = join(REPO_ROOT, "dist/agentgate");

/** Builds dist/agentgate unless it is newer than every source file, so repeated runs stay fast. */
export function ensureBinary(): void {
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  const sources = Math.max(newest(join(REPO_ROOT, "src")), newest(join(REPO_ROOT, "drizzle")), newest(join(REPO_ROOT, "web")), statSync(join(REPO_ROOT, "build.ts")).mtimeMs);
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= sources) return;
  const build = Bun.spawnSync([BUN, "run", "build.ts"], { cwd: REPO_ROOT });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
}

export { onCleanup } from "./cleanup.ts";

export function tempDir(prefix = "agentgate-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface TestGateway extends Gateway {
  dir: string;
  /** A client WebSocket URL on the given transport, with query parameters. */
  wsUrl(transport: Transport, query?: Record<string, string>): string;
  /** fetch() against the gateway's HTTP surface on the given transport. */
  http(transport: Transport, path: string, init?: RequestInit): Promise<Response>;
}

/** Starts a gateway on TCP port 0 and a unix socket, open to any client unless overridden; `log` captures its log lines. */
export async function startTestGateway(overrides: Partial<ConfigInput> = {}, log?: Logger): Promise<TestGateway> {
  const dir = tempDir();
  const { config } = resolveConfig({
    port: 0,
    data_dir: join(dir, "data"),
    unix_socket_path: join(dir, "gw.sock"),
    websocket_requires_token: false,
    log_level: "error",
    shutdown_grace_ms: 500,
    ...overrides,
  });
  const gateway = await startGateway(config, log ?? createLogger(config.log_level));
  onCleanup(() => gateway.stop());
  const tcp = gateway.listeners.find((l) => l.transport === "tcp");
  const base = (t: Transport) => (t === "tcp" ? `http://127.0.0.1:${tcp?.server.port}` : "http://localhost");
  return {
    ...gateway,
    dir,
    wsUrl(transport: Transport, query: Record<string, string> = {}) {
      const qs = new URLSearchParams(query).toString();
      const path = config.path + (qs ? `?${qs}` : "");
      return transport === "tcp" ? `ws://127.0.0.1:${tcp?.server.port}${path}` : `ws+unix://${config.unix_socket_path}:${path}`;
    },
    http(transport: Transport, path: string, init: RequestInit = {}) {
      return fetch(base(transport) + path, { ...init, ...(transport === "unix" && { unix: config.unix_socket_path }) });
    },
  };
}

// biome-ignore lint: frames are free-form JSON in tests.
export type Frame = Record<string, any>;

/** A WebSocket client that queues every frame it receives, for sequential assertions. */
export class TestClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiter: (() => void) | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      this.frames.push(JSON.parse(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer)));
      this.#waiter?.();
    });
    this.closed = new Promise((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
  }

  static open(url: string): Promise<TestClient> {
    const ws = new WebSocket(url);
    const client = new TestClient(ws);
    onCleanup(() => ws.close());
    return new Promise((resolve, reject) => {
      ws.addEventListener("open", () => resolve(client));
      ws.addEventListener("error", () => reject(new Error(`WebSocket failed to open: ${url}`)));
    });
  }

  /** Opens and consumes the `ready` frame. */
  static async ready(url: string): Promise<{ client: TestClient; ready: Frame }> {
    const client = await TestClient.open(url);
    return { client, ready: await client.next() };
  }

  send(frame: object | string): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The next frame, waiting up to `timeoutMs`. */
  async next(timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a frame");
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        setTimeout(resolve, left);
      });
    }
    return this.frames.shift()!;
  }

  /** Frames up to and including the first that matches. */
  async until(match: (f: Frame) => boolean, timeoutMs = 10_000): Promise<Frame[]> {
    const seen: Frame[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = await this.next(Math.max(1, deadline - Date.now()));
      seen.push(frame);
      if (match(frame)) return seen;
    }
  }

  /** Proves nothing else is queued: a ping's pong must be the very next frame. */
  async expectQuiet(): Promise<void> {
    this.send({ type: "ping" });
    const frame = await this.next();
    if (frame.event !== "pong") throw new Error(`expected no frame before pong, got ${JSON.stringify(frame)}`);
  }
}

/** The chat's events as stored, read by a plain WebSocket client with attach since_seq 0. */
export async function storedEvents(url: string, chatId: string): Promise<Frame[]> {
  const { client } = await TestClient.ready(url);
  client.send({ type: "attach", chat_id: chatId, since_seq: 0 });
  const attached = await client.next();
  const frames: Frame[] = [];
  while (frames.at(-1)?.seq !== attached.latest_seq) frames.push(await client.next());
  client.ws.close();
  return frames;
}

export const textOfTurn = (frames: Frame[], turnId: string) =>
  frames
    .filter((f) => f.event === "delta" && f.turn_id === turnId)
    .map((f) => f.text)
    .join("");

export const isTurnEnd = (f: Frame) => f.event === "goal_status" && f.status === "idle";

/**
 * Frames until both the message's ack and the end of its turn arrived. The ack is
 * sent once the user event is durable (after the group commit that holds it), so a
 * fast turn may end in that same commit, before the ack.
 */
export async function ackAndTurnEnd(client: TestClient, timeoutMs = 10_000): Promise<Frame[]> {
  const frames: Frame[] = [];
  while (!frames.some((f) => f.event === "message_ack") || !frames.some(isTurnEnd)) frames.push(await client.next(timeoutMs));
  return frames;
}

/** Performs a WebSocket upgrade as plain HTTP, to read the status of a refused handshake. */
export function upgradeRequest(gw: TestGateway, transport: Transport, path: string): Promise<Response> {
  return gw.http(transport, path, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
}

/**
 * Starts a gateway process (`command` ends in its arguments) in `cwd` with HOME
 * there too, waits for its banner, and kills it after the test if still running.
 */
export async function spawnServe(command: string[], cwd = tempDir()) {
  const proc = Bun.spawn(command, { cwd, env: { PATH: process.env.PATH ?? "", HOME: cwd }, stdout: "pipe", stderr: "pipe" });
  onCleanup(() => {
    if (proc.exitCode === null) proc.kill("SIGKILL");
  });
  const reader = proc.stdout.getReader();
  let banner = "";
  while (!banner.includes("connect:\n") || !banner.endsWith("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`gateway exited early: ${await new Response(proc.stderr).text()}`);
    banner += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { proc, banner, cwd };
}

export const PY_AGENT = join(REPO_ROOT, "test/fixtures/stdio_agent.py");

/** Config for a gateway whose default agent is the Python stdio fixture. */
export function stdioAgentConfig(extra: Partial<ConfigInput> = {}): Partial<ConfigInput> {
  return {
    agent: "py",
    agents: { py: { type: "stdio", command: ["python3", PY_AGENT, "py"] } },
    agent_cancel_grace_ms: 300,
    agent_restart_backoff_ms: 50,
    ...extra,
  };
}

/** Sends a message in the client's default chat and returns the turn's frames. */
export async function sendTurn(client: TestClient, chatId: string, content: string, timeoutMs = 10_000): Promise<Frame[]> {
  client.send({ type: "message", chat_id: chatId, content });
  return client.until(isTurnEnd, timeoutMs);
}
