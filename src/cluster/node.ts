/**
 * This gateway as one node of a cluster: the clustered hub storage (writes of
 * the chats it holds the lease of) and the fan-out (chats another node writes,
 * mirrored into the local hub so this node's clients get them through native
 * topics, ring and transcript as on a single node).
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
  mirror: (chatId: string, seq: number, frame: string) => void;
  /** The newest seq this node has of the chat (hub.latestSeq). */
  latestSeq: (chatId: string) => number;
  log: Logger;
}

export class ClusterNode {
  readonly nodeId = newNodeId();
  readonly storage: ClusterStorage;
  readonly #leases: ChatLeases;
  readonly #fanout: ClusterFanout;

  constructor(private readonly deps: ClusterNodeDeps) {
    const { connection, config, log } = deps;
    const eventLog = new ClusterEventLog(connection.redis, connection.keys, config.cluster_stream_max_events);
    this.#leases = new ChatLeases(connection.redis, connection.keys, this.nodeId, config.cluster_lease_ms);
    this.storage = new ClusterStorage(deps.local, this.#leases, eventLog, { warn: (msg, fields) => log.warn(msg, fields) });
    this.#fanout = new ClusterFanout(connection.subscriber, eventLog, connection.keys, {
      deliver: deps.mirror,
      trimmed: (chatId, from, to) => log.warn("events no longer in the chat's Redis stream were not mirrored", { chat_id: chatId, from, to }),
      error: (chatId, error) => log.error("could not read a chat's Redis stream", { chat_id: chatId, error: String(error) }),
    });
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

  /** False while another node holds the chat's lease (this node may win a free one at its next commit). */
  async writableHere(chatId: string): Promise<boolean> {
    if (this.storage.owns(chatId)) return true;
    const holder = await this.#leases.holder(chatId);
    return holder === undefined || holder.nodeId === this.nodeId;
  }
}
