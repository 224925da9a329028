/**
 * Capable devices across the cluster. A device tool call is decided on the
 * chat's writer, but its capable client may be connected to another node: each
 * node keeps, in a hash per chat, how many of its own clients of the chat
 * declared each tool (field `<node_id> <tool>`), and a key of its own with a
 * TTL (cluster_lease_ms, renewed every third of it) saying it is alive. The
 * writer asks only when it has no capable client itself; a node killed with
 * its entries in place stops counting once its alive key lapses (its fields
 * are removed by the next writer that notices). A clean shutdown removes both.
 *
 * A node that was only slow (paused past its TTL) may find its fields removed
 * meanwhile: a beat that finds its alive key had lapsed, or that follows a
 * count Redis did not take, sends every count again (report() alone sends only
 * changes, and its devices would otherwise stay invisible for good).
 */
import type { RedisClient } from "bun";
import type { Logger } from "../log.ts";
import { answeredWithin } from "./command-timeout.ts";
import type { ClusterKeys } from "./keys.ts";

const field = (nodeId: string, tool: string) => `${nodeId} ${tool}`;

export class ClusterDevices {
  /** This node's counts as last sent to Redis, by chat then tool (no zero entries). */
  readonly #reported = new Map<string, Map<string, number>>();
  readonly #alive: string;
  #heartbeat?: Timer;
  /** A count was not taken by Redis: the next beat sends them all again. */
  #resendDue = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ClusterKeys,
    private readonly nodeId: string,
    private readonly aliveMs: number,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {
    this.#alive = keys.nodeAlive(nodeId);
  }

  /** Marks this node alive before it serves, then keeps it so. */
  async start(): Promise<void> {
    await this.#beat();
    this.#heartbeat = setInterval(() => void this.#beat().catch((e: unknown) => this.log.warn("could not renew this node's alive key; its devices stop counting elsewhere if it lapses", { error: String(e) })), Math.max(1, Math.floor(this.aliveMs / 3)));
    this.#heartbeat.unref();
  }

  /** Renews the alive key (SET ... GET says whether it had lapsed); after a lapse or a lost count, every count is sent again. */
  async #beat(): Promise<void> {
    const previous = await answeredWithin(this.redis.send("SET", [this.#alive, "1", "PX", String(this.aliveMs), "GET"]), this.timeoutMs, "a node's alive key");
    if (previous !== null && !this.#resendDue) return;
    this.#resendDue = false;
    const sends = [...this.#reported].map(([chatId, tools]) => this.redis.send("HSET", [this.keys.devices(chatId), ...[...tools].flatMap(([tool, count]) => [field(this.nodeId, tool), String(count)])]));
    await Promise.all(sends.map((sent) => answeredWithin(sent, this.timeoutMs, "this node's capable devices"))).catch((e: unknown) => {
      this.#resendDue = true;
      throw e;
    });
  }

  /**
   * How many of this node's clients of the chat declared the tool, now: sent
   * when it changed. Commands on one connection run in order, so the last count
   * sent is the one Redis keeps. A write lost to a Redis failure is logged, and
   * the next beat sends every count again.
   */
  report(chatId: string, tool: string, count: number): void {
    const tools = this.#reported.get(chatId);
    if ((tools?.get(tool) ?? 0) === count) return;
    const key = this.keys.devices(chatId);
    const name = field(this.nodeId, tool);
    let sent: Promise<unknown>;
    if (count > 0) {
      if (tools) tools.set(tool, count);
      else this.#reported.set(chatId, new Map([[tool, count]]));
      sent = this.redis.hset(key, name, String(count));
    } else {
      tools!.delete(tool);
      if (tools!.size === 0) this.#reported.delete(chatId);
      sent = this.redis.hdel(key, name);
    }
    sent.catch((e: unknown) => {
      this.#resendDue = true;
      this.log.warn("could not record this node's capable devices of a chat in Redis", { chat_id: chatId, error: String(e) });
    });
  }

  /**
   * Whether a live node other than this one has a client of the chat that
   * declared the tool; undefined when Redis did not answer (in time).
   */
  async capableElsewhere(chatId: string, tool: string): Promise<boolean | undefined> {
    const key = this.keys.devices(chatId);
    try {
      const entries = await answeredWithin(this.redis.hgetall(key), this.timeoutMs, "a chat's capable devices");
      const nodes = Object.entries(entries ?? {}).flatMap(([name, count]) => {
        const space = name.indexOf(" ");
        const node = name.slice(0, space);
        return name.slice(space + 1) === tool && node !== this.nodeId && Number(count) > 0 ? [node] : [];
      });
      if (nodes.length === 0) return false;
      const alive = (await answeredWithin(this.redis.send("MGET", nodes.map((n) => this.keys.nodeAlive(n))), this.timeoutMs, "nodes' alive keys")) as (string | null)[];
      const dead = nodes.filter((_, i) => alive[i] === null);
      // A dead node's entries are left behind by a crash: removed by whoever notices (it never comes back under the same id).
      if (dead.length > 0) this.redis.send("HDEL", [key, ...dead.map((n) => field(n, tool))]).catch(() => {});
      return dead.length < nodes.length;
    } catch (e) {
      this.log.warn("could not ask Redis for a chat's capable devices on other nodes", { chat_id: chatId, error: String(e) });
      return undefined;
    }
  }

  /** Clean shutdown, after this node's clients are gone: its entries and alive key removed. */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    const removals = [...this.#reported].map(([chatId, tools]) => this.redis.send("HDEL", [this.keys.devices(chatId), ...[...tools.keys()].map((t) => field(this.nodeId, t))]));
    this.#reported.clear();
    await Promise.allSettled([...removals, this.redis.del(this.#alive)].map((p) => answeredWithin(p, this.timeoutMs, "this node's devices")));
  }
}
