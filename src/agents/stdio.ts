/**
 * An agent run as a child process speaking the agent protocol as JSON lines on
 * stdin/stdout. Its stderr goes to our log. It must say `hello` before it gets
 * turns. If it dies, its open turns end with status error and it is restarted
 * after a backoff that doubles per quick failure (up to 30 s).
 */
import type { Subprocess } from "bun";
import { metrics } from "../metrics/metrics.ts";
import type { Logger } from "../log.ts";
import type { GatewayToAgent } from "../protocol/agent.ts";
import { AGENT_UNAVAILABLE } from "../protocol/errors.ts";
import type { AgentEvents } from "./agent.ts";
import { FramedAgent } from "./framed.ts";
import { readLines } from "./lines.ts";
import { ReadyGate } from "./ready-gate.ts";

export interface StdioSpec {
  command: string[];
  env: Record<string, string>;
  cwd?: string;
}

export interface StdioOptions {
  startTimeoutMs: number;
  restartBackoffMs: number;
  cancelGraceMs: number;
  maxFrameBytes: number;
}

const MAX_BACKOFF_MS = 30_000;
/** A child that lived this long counts as healthy: its next failure starts the backoff over. */
const HEALTHY_AFTER_MS = 30_000;

export class StdioAgent extends FramedAgent {
  #child: Subprocess<"pipe", "pipe", "pipe"> | undefined;
  #helloSeen = false;
  readonly #gate = new ReadyGate();
  #closing = false;
  #backoffMs: number;

  constructor(
    name: string,
    private readonly spec: StdioSpec,
    private readonly options: StdioOptions,
    events: AgentEvents,
    log: Logger,
  ) {
    super(name, events, log, options.cancelGraceMs);
    this.#backoffMs = options.restartBackoffMs;
    this.transport = { ready: (signal) => this.#ready(signal), send: (frame) => this.#send(frame) };
    this.#start();
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#gate.close(AGENT_UNAVAILABLE);
    const child = this.#child;
    if (!child) return;
    child.kill("SIGTERM");
    const exited = await Promise.race([child.exited.then(() => true), Bun.sleep(2000).then(() => false)]);
    if (!exited) child.kill("SIGKILL");
  }

  #start(): void {
    this.#helloSeen = false;
    const startedAt = Date.now();
    const child = Bun.spawn(this.spec.command, {
      cwd: this.spec.cwd,
      env: { ...process.env, ...this.spec.env },
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    this.#child = child;
    const log = this.log;
    log.info("agent started", { agent: this.name, pid: child.pid });
    const tooLong = (bytes: number) => log.warn("agent frame over max_agent_frame_bytes dropped", { agent: this.name, bytes });
    void readLines(child.stdout, this.options.maxFrameBytes, (line) => this.#onLine(line), tooLong);
    void readLines(child.stderr, this.options.maxFrameBytes, (line) => log.info("agent stderr", { agent: this.name, line }));
    void child.exited.then((code) => {
      this.#child = undefined;
      this.failOpenTurns("agent_exited");
      if (this.#closing) return;
      this.#backoffMs = Date.now() - startedAt > HEALTHY_AFTER_MS ? this.options.restartBackoffMs : Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
      metrics.agentRestarted(this.name);
      log.warn("agent exited; restarting", { agent: this.name, code, in_ms: this.#backoffMs });
      setTimeout(() => this.#closing || this.#start(), this.#backoffMs);
    });
  }

  /** `receive` is the boundary for frame handling; this only notes the hello. */
  #onLine(line: string): void {
    if (this.receive(line)?.type !== "hello" || this.#helloSeen) return;
    this.#helloSeen = true;
    this.#gate.open();
  }

  #ready(signal: AbortSignal): Promise<void> {
    if (this.#child && this.#helloSeen) return Promise.resolve();
    return this.#gate.wait(this.options.startTimeoutMs, AGENT_UNAVAILABLE, signal);
  }

  #send(frame: GatewayToAgent): boolean {
    if (!this.#child || !this.#helloSeen) return false;
    this.#child.stdin.write(`${JSON.stringify(frame)}\n`);
    this.#child.stdin.flush();
    return true;
  }
}
