/**
 * History older than a chat's capped Redis stream, for a node filling a gap
 * the stream no longer holds (fanout.ts).
 *
 * With a durable history (store_postgres_url) it is read from there
 * (event-archive.ts), a page of at most `HISTORY_MAX_EVENTS` from the start of
 * the gap: the stream drops only what the archive holds, so the archive has
 * every seq older than the stream. The nodes are asked only for what the
 * archive lacks at the start of the gap (history from before the archive
 * existed, or trimmed during a long PostgreSQL outage).
 *
 * Without one, the nodes that hold it: the asker asks every node on one
 * channel for the missing seqs (at most `HISTORY_MAX_EVENTS`, the newest of
 * the gap); a node whose own store (ring and transcript) holds every one of
 * them claims the answer key first (SET NX, with a TTL), so only one node reads
 * and serializes them, writes the client frames there and names the key in the
 * asker's inbox; the asker reads it once (GETDEL). No node holding the whole
 * range, or no answer within `cluster_history_wait_ms`: the gap stays, logged
 * as trimmed.
 */
import type { Logger } from "../log.ts";
import { isChatId } from "../protocol/client.ts";
import type { EventArchive } from "../store/event-archive.ts";
import type { ClusterConnection } from "./cluster.ts";
import { settledWithin } from "./command-timeout.ts";

/** Events one request asks for: bounds the answer key and one fill's memory (a chat's stream holds cluster_stream_max_events). Also one page read from the archive. */
const HISTORY_MAX_EVENTS = 10_000;
/** How long an answer key lives: longer than any asker waits. */
const ANSWER_TTL_MS = 60_000;

interface HistoryRequest {
  from: string;
  ref: string;
  chat_id: string;
  first: number;
  last: number;
}

export interface OlderEvents {
  /** Seq of the first frame. */
  first: number;
  frames: string[];
}

export class SharedHistory {
  /** Requests of this node awaiting an answer: ref → resolve with the answer key. */
  readonly #awaiting = new Map<string, (key: string) => void>();
  #nextRef = 0;

  constructor(
    private readonly connection: ClusterConnection,
    private readonly nodeId: string,
    private readonly local: {
      /** Whether this node holds seqs first..last of the chat (a cheap check, before claiming the answer). */
      holdsRange: (chatId: string, first: number, last: number) => Promise<boolean>;
      /** This node's client frames of the chat for seqs first..last, or undefined unless it holds every one. */
      readRange: (chatId: string, first: number, last: number) => Promise<string[] | undefined>;
    },
    private readonly waitMs: number,
    private readonly log: Logger,
    /** The durable history, with store_postgres_url. */
    private readonly archive?: EventArchive,
  ) {}

  start(): Promise<void> {
    return this.connection.subscriber.subscribe(this.connection.keys.historyRequests(), (text) => void this.#answer(text));
  }

  stop(): Promise<void> {
    return this.connection.subscriber.unsubscribe(this.connection.keys.historyRequests());
  }

  /**
   * Seqs of the chat from first..last: from the archive, the consecutive ones
   * from the first it holds (at most about HISTORY_MAX_EVENTS); from another
   * node, the newest HISTORY_MAX_EVENTS of them; or none.
   */
  async request(chatId: string, first: number, last: number): Promise<OlderEvents> {
    if (!this.archive) return this.#ask(chatId, first, last);
    const archived = await this.archive.read(chatId, first, last, HISTORY_MAX_EVENTS);
    if (archived.frames.length > 0 && archived.first === first) return archived;
    const fromNodes = await this.#ask(chatId, first, archived.frames.length > 0 ? archived.first - 1 : last);
    return fromNodes.frames.length > 0 ? fromNodes : archived;
  }

  /** Seqs first..last of the chat from another node (the newest HISTORY_MAX_EVENTS of them), or none. */
  async #ask(chatId: string, first: number, last: number): Promise<OlderEvents> {
    const { redis, keys } = this.connection;
    const from = Math.max(first, last - HISTORY_MAX_EVENTS + 1);
    const ref = `${this.nodeId}:${this.#nextRef++}`;
    const answered = new Promise<string | undefined>((resolve) => this.#awaiting.set(ref, resolve));
    try {
      const request: HistoryRequest = { from: this.nodeId, ref, chat_id: chatId, first: from, last };
      await redis.publish(keys.historyRequests(), JSON.stringify(request));
      const key = await settledWithin(answered, this.waitMs, () => undefined);
      const frames = key === undefined ? null : ((await redis.send("GETDEL", [key])) as string | null);
      return { first: from, frames: frames === null || frames === "" ? [] : (JSON.parse(frames) as string[]) };
    } finally {
      this.#awaiting.delete(ref);
    }
  }

  /** The inbox named the key holding the answer to one of this node's requests. */
  answered(ref: string, key: string): void {
    this.#awaiting.get(ref)?.(key);
  }

  /** Another node's request: answered when this node holds the whole range and no other node answered first. */
  async #answer(text: string): Promise<void> {
    try {
      const request = JSON.parse(text) as HistoryRequest;
      if (request.from === this.nodeId) return;
      // From Redis, not trusted further than the protocol's own checks: a chat id names a file here.
      if (!isChatId(request.chat_id) || !Number.isSafeInteger(request.first) || !Number.isSafeInteger(request.last) || request.first < 1 || request.last < request.first) return;
      if (!(await this.local.holdsRange(request.chat_id, request.first, request.last))) return;
      const { redis, keys } = this.connection;
      const key = keys.historyAnswer(request.ref);
      // Claimed before reading: of all the nodes holding the range, one reads and serializes it.
      if ((await redis.send("SET", [key, "", "PX", String(ANSWER_TTL_MS), "NX"])) === null) return;
      // Read failing (or the range held a moment ago, not now: the chat was deleted, holdsRange checks only the
      // first seq): the claim is given up, so a node asked after it is not locked out of answering.
      const frames = await this.local.readRange(request.chat_id, request.first, request.last).catch((e: unknown) => {
        void redis.del(key).catch(() => {});
        throw e;
      });
      if (!frames) return void (await redis.del(key));
      await redis.send("SET", [key, JSON.stringify(frames), "PX", String(ANSWER_TTL_MS), "XX"]);
      await redis.publish(keys.inbox(request.from), JSON.stringify({ kind: "history", ref: request.ref, key }));
    } catch (e) {
      // Runs in a subscriber callback: logged, never thrown (the asker logs the gap as trimmed).
      this.log.warn("could not answer another node's request for a chat's history", { error: String(e) });
    }
  }
}
