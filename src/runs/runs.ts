/**
 * Runs: at most one active turn per chat. Further messages wait in a bounded
 * FIFO; beyond it the sender is told the chat is busy. Stopping cancels the
 * active turn (the agent sees its signal abort) and clears the queue. A client
 * disconnecting never cancels anything: turns belong to chats, not sockets.
 *
 * At shutdown no message is taken any more, running turns get the grace, and
 * each message still queued behind one is closed in its chat once that turn has
 * ended: a turn_end with status error and error "gateway_shutdown", after a
 * message saying so, so its sender sees it was not run (live or on replay) and
 * can send it again. Queued messages are not run after a restart.
 */
import type { Agent, AgentMedia, TurnResult } from "../agents/agent.ts";
import type { Hub } from "../chat/hub.ts";
import type { Logger } from "../log.ts";
import { GATEWAY_SHUTDOWN } from "../protocol/errors.ts";
import type { AgentOutput } from "./agent-output.ts";
import type { ToolCalls } from "./tool-calls.ts";
import { TurnPublisher } from "./turn-publisher.ts";
import { metrics } from "../metrics/metrics.ts";

export interface TurnInput {
  content: string;
  media: AgentMedia[];
  metadata: Record<string, unknown>;
  /** Seq of the `user` event this turn answers. */
  userSeq: number;
}

interface ActiveTurn {
  turnId: string;
  /** Unix seconds, as goal_status.started_at carries it. */
  startedAt: number;
  /** Seq of the `user` event the turn answers: everything after it is the turn's own output. */
  userSeq: number;
  controller: AbortController;
  done: Promise<void>;
}

interface ChatRun {
  active?: ActiveTurn;
  queue: TurnInput[];
}

export type SubmitOutcome = "started" | "queued" | "busy";

/** nanobot's reply to a stop with nothing running. */
export const NO_ACTIVE_TASK = "No active task to stop.";

/** Where turn starts and ends are recorded (the store), and the transcript flushed at each end. */
export interface TurnLog {
  started(turnId: string, chatId: string, startedMs: number): void;
  ended(turnId: string, chatId: string, result: TurnResult, latencyMs: number): void;
}

export interface RunsOptions {
  hub: Hub;
  turnLog: TurnLog;
  agentFor: (chatId: string) => Agent;
  toolCalls: ToolCalls;
  output: AgentOutput;
  streaming: boolean;
  maxQueuedTurns: number;
  log: Logger;
}

export class Runs {
  readonly #chats = new Map<string, ChatRun>();
  #shuttingDown = false;

  constructor(private readonly options: RunsOptions) {}

  /** Would a message to this chat run or queue (rather than be refused as busy)? */
  hasRoom(chatId: string): boolean {
    if (this.#shuttingDown) return false;
    const run = this.#chats.get(chatId);
    return !run?.active || run.queue.length < this.options.maxQueuedTurns;
  }

  submit(chatId: string, input: TurnInput): SubmitOutcome {
    if (this.#shuttingDown) return "busy";
    const run = this.#chats.get(chatId) ?? { queue: [] };
    this.#chats.set(chatId, run);
    if (!run.active) {
      this.#start(chatId, run, input);
      return "started";
    }
    if (run.queue.length >= this.options.maxQueuedTurns) return "busy";
    run.queue.push(input);
    return "queued";
  }

  /**
   * Cancels the active turn and drops queued ones, and says so in the chat
   * (nanobot's "/stop" replies); returns how many were stopped.
   */
  stop(chatId: string): number {
    const stopped = this.#cancel(chatId);
    const text = stopped > 0 ? `Stopped ${stopped} task(s).` : NO_ACTIVE_TASK;
    // `stopped`: additive, so a node mirroring the chat learns of the stop without reading the text (src/cluster/queued-messages.ts).
    this.options.hub.publish({ event: "message", chat_id: chatId, text, stopped });
    return stopped;
  }

  /** Cancels the chat's turn silently and waits until it has ended (before the chat is deleted). */
  async stopAndWait(chatId: string): Promise<void> {
    const done = this.#chats.get(chatId)?.active?.done;
    this.#cancel(chatId);
    await done;
  }

  #cancel(chatId: string): number {
    const run = this.#chats.get(chatId);
    if (!run?.active) return 0;
    const stopped = 1 + run.queue.length;
    run.queue.length = 0;
    run.active.controller.abort();
    return stopped;
  }

  /** Chats with a turn running (a gauge on /metrics; counted at scrape time). */
  activeCount(): number {
    let n = 0;
    for (const run of this.#chats.values()) if (run.active) n++;
    return n;
  }

  activeTurn(chatId: string): { turnId: string; startedAt: number; userSeq: number } | undefined {
    return this.#chats.get(chatId)?.active;
  }

  /**
   * Shutdown: take no more messages, let running turns finish for up to `graceMs`,
   * then cancel them and wait for their ends; messages queued behind them are closed unrun.
   */
  async settle(graceMs: number): Promise<void> {
    this.#shuttingDown = true;
    const running = () => [...this.#chats.values()].flatMap((r) => (r.active ? [r.active] : []));
    if (running().length === 0) return;
    await Promise.race([Promise.all(running().map((t) => t.done)), Bun.sleep(graceMs)]);
    for (const turn of running()) turn.controller.abort();
    await Promise.all(running().map((t) => t.done));
  }

  #start(chatId: string, run: ChatRun, input: TurnInput): void {
    const turnId = crypto.randomUUID();
    const startedMs = Date.now();
    const controller = new AbortController();
    const active: ActiveTurn = { turnId, startedAt: startedMs / 1000, userSeq: input.userSeq, controller, done: Promise.resolve() };
    run.active = active;
    active.done = this.#execute(chatId, active, input, startedMs).finally(() => {
      run.active = undefined;
      if (this.#shuttingDown) for (const queued of run.queue.splice(0)) this.#closeUnrun(chatId, queued);
      const next = run.queue.shift();
      if (next) this.#start(chatId, run, next);
      else this.#chats.delete(chatId);
    });
  }

  /** A queued message the gateway will not run (shutdown): its turn ends at once, visibly, with an error. */
  #closeUnrun(chatId: string, input: TurnInput): void {
    const { hub, turnLog } = this.options;
    const turn_id = crypto.randomUUID();
    turnLog.started(turn_id, chatId, Date.now());
    const text = `Error: the gateway shut down before your message (seq ${input.userSeq}) ran; send it again.`;
    hub.publish({ event: "message", chat_id: chatId, text, turn_id });
    hub.publish({ event: "turn_end", chat_id: chatId, latency_ms: 0, goal_state: { active: false }, status: "error", error: GATEWAY_SHUTDOWN, turn_id });
    turnLog.ended(turn_id, chatId, { status: "error", error: GATEWAY_SHUTDOWN }, 0);
  }

  async #execute(chatId: string, turn: ActiveTurn, input: TurnInput, startedMs: number): Promise<void> {
    const { hub, streaming, log, turnLog, toolCalls, output } = this.options;
    const turn_id = turn.turnId;
    const agent = this.options.agentFor(chatId);
    turnLog.started(turn_id, chatId, startedMs);
    const turnSeq = hub.publish({ event: "goal_status", chat_id: chatId, status: "running", started_at: turn.startedAt, turn_id });
    const publisher = new TurnPublisher({
      hub,
      output,
      chatId,
      turnId: turn_id,
      streaming,
      startedMs,
      turnSeq,
      onToolRequest: (frame) => toolCalls.request(chatId, turn_id, agent, frame),
      log,
    });
    const request = { turn_id, chat_id: chatId, content: input.content, media: input.media, metadata: input.metadata, user_seq: input.userSeq };
    let result: TurnResult;
    try {
      result = await agent.runTurn(request, publisher.emit, turn.controller.signal);
    } catch (e) {
      result = { status: "error", error: e instanceof Error ? e.message : String(e) };
    }
    if (result.status === "error") {
      log.warn("turn failed", { chat_id: chatId, turn_id, error: result.error });
      publisher.say(`Error: ${result.error ?? "agent failed"}`);
    }
    await publisher.close();
    toolCalls.turnEnded(turn_id);
    const latencyMs = Date.now() - startedMs;
    const end = { event: "turn_end" as const, chat_id: chatId, latency_ms: latencyMs, goal_state: { active: false }, status: result.status, turn_id };
    hub.publish(result.error === undefined ? end : { ...end, error: result.error });
    hub.publish({ event: "goal_status", chat_id: chatId, status: "idle", turn_id });
    turnLog.ended(turn_id, chatId, result, latencyMs);
    const stats = publisher.stats();
    metrics.turnEnded(agent.name, result.status, latencyMs, stats);
    log.info("turn end", { chat_id: chatId, turn_id, agent: agent.name, status: result.status, duration_ms: latencyMs, ...stats });
  }
}
