/**
 * Agents that connect in over WebSocket (TCP or the unix socket) at agent_path,
 * with the agent credential. A connection must say `hello {agent}` naming a
 * configured ws agent within the hello timeout; a newer connection for the same
 * name replaces the older one. While an agent is away, its open turns wait up to
 * the reconnect grace (the agent may continue them after its hello), then end
 * with error "agent_disconnected"; new turns wait as long for it to appear.
 */
import type { ServerWebSocket, WebSocketHandler } from "bun";
import { metrics } from "../metrics/metrics.ts";
import type { Logger } from "../log.ts";
import type { GatewayToAgent } from "../protocol/agent.ts";
import {
  AGENT_DISCONNECTED,
  AGENT_GOING_AWAY_REASON,
  BAD_HELLO_REASON,
  CLOSE_GOING_AWAY,
  CLOSE_POLICY,
  CLOSE_REPLACED,
  FRAME_NOT_HANDLED,
  HELLO_REQUIRED,
  HELLO_REQUIRED_REASON,
  INTERNAL_ERROR,
  NO_HELLO_REASON,
  REPLACED_REASON,
} from "../protocol/errors.ts";
import type { AgentEvents } from "./agent.ts";
import { FramedAgent } from "./framed.ts";
import { ReadyGate } from "./ready-gate.ts";

export interface AgentConnData {
  role: "agent";
  name?: string;
  helloTimer?: Timer;
}

export type AgentSocket = ServerWebSocket<AgentConnData>;

export interface WsAgentOptions {
  helloTimeoutMs: number;
  reconnectGraceMs: number;
  cancelGraceMs: number;
}

/** WebSocket close codes: policy violation (no or bad hello) and normal replacement. */
const SOCKET_OPEN = 1;

class WsAgent extends FramedAgent {
  #socket: AgentSocket | undefined;
  readonly #gate = new ReadyGate();
  #graceTimer: Timer | undefined;

  constructor(name: string, events: AgentEvents, log: Logger, private readonly options: WsAgentOptions) {
    super(name, events, log, options.cancelGraceMs);
    this.transport = {
      ready: (signal) => this.#ready(signal),
      send: (frame: GatewayToAgent) => {
        if (this.#socket?.readyState !== SOCKET_OPEN) return false;
        this.#socket.send(JSON.stringify(frame));
        return true;
      },
    };
  }

  connect(ws: AgentSocket): void {
    const previous = this.#socket;
    this.#socket = ws;
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    if (previous && previous !== ws) previous.close(CLOSE_REPLACED, REPLACED_REASON);
    this.#gate.open();
  }

  get connected(): boolean {
    return this.#socket !== undefined;
  }

  disconnected(ws: AgentSocket): void {
    if (this.#socket !== ws) return;
    this.#socket = undefined;
    metrics.agentDisconnected(this.name);
    if (this.openTurns > 0) this.#graceTimer = setTimeout(() => this.failOpenTurns(AGENT_DISCONNECTED), this.options.reconnectGraceMs);
  }

  async close(): Promise<void> {
    clearTimeout(this.#graceTimer);
    this.#gate.close(AGENT_DISCONNECTED);
    this.#socket?.close(CLOSE_GOING_AWAY, AGENT_GOING_AWAY_REASON);
  }

  #ready(signal: AbortSignal): Promise<void> {
    if (this.#socket) return Promise.resolve();
    return this.#gate.wait(this.options.reconnectGraceMs, AGENT_DISCONNECTED, signal);
  }
}

/** The answer to an agent frame whose handling failed: an error frame; the connection stays up. */
export function answerAgentFrameFailed(ws: AgentSocket): void {
  if (ws.readyState === SOCKET_OPEN) ws.send(JSON.stringify({ type: "error", detail: INTERNAL_ERROR, reason: FRAME_NOT_HANDLED }));
}

export class WsAgents {
  readonly #agents = new Map<string, WsAgent>();

  constructor(names: string[], events: AgentEvents, private readonly log: Logger, private readonly options: WsAgentOptions) {
    for (const name of names) this.#agents.set(name, new WsAgent(name, events, log, options));
  }

  get(name: string): FramedAgent | undefined {
    return this.#agents.get(name);
  }

  /** Is the ws agent of this name connected right now? */
  connected(name: string): boolean {
    return this.#agents.get(name)?.connected ?? false;
  }

  get configured(): boolean {
    return this.#agents.size > 0;
  }

  /** Socket callbacks; they run inside the listeners' one error boundary (connections.ts), which logs and answers failures. */
  readonly handler: Required<Pick<WebSocketHandler<AgentConnData>, "open" | "message" | "close">> = {
    open: (ws) => {
      ws.data.helloTimer = setTimeout(() => ws.close(CLOSE_POLICY, NO_HELLO_REASON), this.options.helloTimeoutMs);
    },
    message: (ws, raw) => {
      const text = typeof raw === "string" ? raw : raw.toString("utf8");
      const agent = ws.data.name === undefined ? undefined : this.#agents.get(ws.data.name);
      if (agent) return void agent.receive(text);
      this.#hello(ws, text);
    },
    close: (ws) => {
      clearTimeout(ws.data.helloTimer);
      if (ws.data.name) this.#agents.get(ws.data.name)?.disconnected(ws);
    },
  };

  /** The first frame must be hello naming a configured ws agent. */
  #hello(ws: AgentSocket, text: string): void {
    let name: unknown;
    try {
      const frame = JSON.parse(text) as { type?: unknown; agent?: unknown };
      if (frame.type === "hello") name = frame.agent;
    } catch {}
    const agent = typeof name === "string" ? this.#agents.get(name) : undefined;
    if (!agent) {
      ws.send(JSON.stringify({ type: "error", detail: HELLO_REQUIRED, reason: HELLO_REQUIRED_REASON }));
      ws.close(CLOSE_POLICY, BAD_HELLO_REASON);
      return;
    }
    clearTimeout(ws.data.helloTimer);
    ws.data.name = agent.name;
    agent.connect(ws);
    this.log.info("agent connected", { agent: agent.name });
  }
}
