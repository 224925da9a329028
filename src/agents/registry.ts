/**
 * Every agent the gateway can route a chat to, built from config: the built-in
 * echo agent plus each named agent (stdio child, WebSocket agent, OpenAI-compatible).
 */
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Agent, AgentEvents } from "./agent.ts";
import { createEchoAgent } from "./echo.ts";
import { createOpenAIAgent, type HistoryReader } from "./openai.ts";
import { stdioCommandProblem } from "./spawnable.ts";
import { StdioAgent } from "./stdio.ts";
import { WsAgents } from "./ws-agents.ts";

export class AgentRegistry {
  readonly #agents = new Map<string, Agent>();
  readonly ws: WsAgents;
  readonly specs: Config["agents"];

  constructor(config: Config, events: AgentEvents, readHistory: HistoryReader, log: Logger) {
    this.specs = config.agents;
    this.#agents.set("echo", createEchoAgent({ chunkSize: config.echo_chunk_size, repeat: config.echo_repeat, delayMs: config.echo_delay_ms }));
    const wsNames = Object.entries(config.agents).flatMap(([name, spec]) => (spec.type === "ws" ? [name] : []));
    this.ws = new WsAgents(wsNames, events, log, {
      helloTimeoutMs: config.agent_hello_timeout_ms,
      reconnectGraceMs: config.agent_reconnect_grace_ms,
      cancelGraceMs: config.agent_cancel_grace_ms,
    });
    for (const [name, spec] of Object.entries(config.agents)) {
      if (spec.type === "ws") this.#agents.set(name, this.ws.get(name)!);
      else if (spec.type === "openai") this.#agents.set(name, createOpenAIAgent(name, spec, readHistory));
      else {
        const options = {
          startTimeoutMs: config.agent_start_timeout_ms,
          restartBackoffMs: config.agent_restart_backoff_ms,
          cancelGraceMs: config.agent_cancel_grace_ms,
          maxFrameBytes: config.max_agent_frame_bytes,
        };
        this.#agents.set(name, new StdioAgent(name, spec, options, events, log));
      }
    }
  }

  has(name: string): boolean {
    return this.#agents.has(name);
  }

  /** Every agent a chat may be routed to: echo, then the configured ones. */
  names(): string[] {
    return [...this.#agents.keys()];
  }

  get(name: string): Agent | undefined {
    return this.#agents.get(name);
  }

  /** Why some configured agent could not take a turn now (for /ready), or undefined. */
  notReady(): string | undefined {
    for (const [name, spec] of Object.entries(this.specs)) {
      if (spec.type === "ws" && !this.ws.connected(name)) return `agent ${name} (ws) is not connected`;
      const problem = spec.type === "stdio" ? stdioCommandProblem(spec) : undefined;
      if (problem) return `agent ${name} (stdio): ${problem}`;
    }
    return undefined;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((a) => a.close?.()));
  }
}
