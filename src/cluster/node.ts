/**
 * This gateway as one node of a cluster: the clustered hub storage (writes of
 * the chats it holds the lease of) and the fan-out (chats another node writes,
 * mirrored into the local hub so this node's clients get them through native
 * topics, ring and transcript as on a single node).
 *
 * Takeover: a node mirroring a chat whose turn is running checks the chat's
 * lease every half lease; once nobody holds it (the writer crashed, was killed,
 * or is cut off and fenced), the node takes the lease, reads everything the
 * stream holds, and closes the interrupted turn as a restart would. Its own
 * events then number past anything published. A chat with no running turn is
 * taken over by the first node that has a message for it.
 */
import type { ChatStorage } from "../chat/storage.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { ClusterConnection } from "./cluster.ts";
import { ClusterStorage } from "./cluster-storage.ts";
import { ClusterEventLog } from "./event-log.ts";
import { ClusterFanout } from "./fanout.ts";
import { ChatLeases, newNodeId } from "./lease.ts";

export interface ClusterNodeDeps {
  connection: ClusterConnection;
  local: ChatStorage;
  config: Pick<Config, "cluster_lease_ms" | "cluster_stream_max_events">;
  /** Reveals an event another node appended (hub.mirror). */
  mirror: (chatId: string, seq: number, frame: string, event: object) => void;
  /** The newest seq this node has of the chat (hub.latestSeq). */
  latestSeq: (chatId: string) => number;
  /** Ends a turn whose writer died (publishes turn_end interrupted and goal_status idle). */
  closeTurn: (chatId: string, turnId: string) => void;
  log: Logger;
}

export class ClusterNode {
  readonly nodeId = newNodeId();
  readonly storage: ClusterStorage;
  readonly #leases: ChatLeases;
  readonly #fanout: ClusterFanout;
  /** Mirrored chats whose turn is running (chat → turn_id): the ones to take over if their writer dies. */
  readonly #runningTurns = new Map<string, string>();
  readonly #watchTimer: Timer;
  /** Takeovers under way (a second caller waits for the first). */
  readonly #takingOver = new Map<string, Promise<boolean>>();

  constructor(private readonly deps: ClusterNodeDeps) {
    const { connection, config, log } = deps;
    const eventLog = new ClusterEventLog(connection.redis, connection.keys, config.cluster_stream_max_events);
    this.#leases = new ChatLeases(connection.redis, connection.keys, this.nodeId, config.cluster_lease_ms);
    this.storage = new ClusterStorage(deps.local, this.#leases, eventLog, { warn: (msg, fields) => log.warn(msg, fields) });
    this.#fanout = new ClusterFanout(connection.subscriber, eventLog, connection.keys, {
      deliver: (chatId, seq, frame) => this.#mirror(chatId, seq, frame),
      trimmed: (chatId, from, to) => log.warn("events no longer in the chat's Redis stream were not mirrored", { chat_id: chatId, from, to }),
      error: (chatId, error) => log.error("could not read a chat's Redis stream", { chat_id: chatId, error: String(error) }),
    });
    this.#watchTimer = setInterval(() => void this.#watchWriters(), Math.max(1, Math.floor(config.cluster_lease_ms / 2)));
    this.#watchTimer.unref();
  }

  /**
   * Before a client reads a chat this node does not write: it follows the chat
   * (another node may write it now or later) and has caught up when the promise
   * resolves. Its own events coming back are skipped by the hub (seq already held).
   */
  async follow(chatId: string): Promise<void> {
    if (this.storage.owns(chatId) || this.#fanout.following(chatId)) return;
    await this.#fanout.follow(chatId, this.deps.latestSeq(chatId));
  }

  /** False while another node holds the chat's lease; a free lease is taken over here first. */
  async writableHere(chatId: string): Promise<boolean> {
    if (this.storage.owns(chatId)) return true;
    const holder = await this.#leases.holder(chatId);
    if (holder !== undefined) return holder.nodeId === this.nodeId;
    return this.#takeOver(chatId);
  }

  /** Shutdown: no more takeovers; the leases go with the storage's close. */
  stop(): void {
    clearInterval(this.#watchTimer);
  }

  #mirror(chatId: string, seq: number, frame: string): void {
    const event = JSON.parse(frame) as { event?: string; status?: string; turn_id?: string };
    if (event.event === "goal_status" && event.turn_id !== undefined) {
      if (event.status === "running") this.#runningTurns.set(chatId, event.turn_id);
      else if (event.status === "idle") this.#runningTurns.delete(chatId);
    }
    this.deps.mirror(chatId, seq, frame, event);
  }

  /** Chats mirrored mid-turn whose lease nobody holds any more are taken over. */
  async #watchWriters(): Promise<void> {
    for (const chatId of this.#runningTurns.keys()) {
      if (this.storage.owns(chatId)) continue;
      try {
        if ((await this.#leases.holder(chatId)) === undefined) await this.#takeOver(chatId);
      } catch (e) {
        this.deps.log.warn("could not check a chat's writer", { chat_id: chatId, error: String(e) });
      }
    }
  }

  #takeOver(chatId: string): Promise<boolean> {
    let running = this.#takingOver.get(chatId);
    if (!running) {
      running = this.#claim(chatId).finally(() => this.#takingOver.delete(chatId));
      this.#takingOver.set(chatId, running);
    }
    return running;
  }

  /** The lease first (the old writer is fenced from then on), then every published event, then the interrupted turn closed. */
  async #claim(chatId: string): Promise<boolean> {
    if (!(await this.storage.claim(chatId))) return false;
    await this.#fanout.catchUp(chatId, this.deps.latestSeq(chatId));
    const turnId = this.#runningTurns.get(chatId);
    if (turnId !== undefined) {
      this.#runningTurns.delete(chatId);
      this.deps.closeTurn(chatId, turnId);
      this.deps.log.warn("took over a chat whose writer stopped; its running turn is closed as interrupted", { chat_id: chatId, turn_id: turnId });
    }
    return true;
  }
}
