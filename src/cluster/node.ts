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
 *
 * Idle chats: a chat this node writes with no turn and nothing appended for
 * `cluster_idle_ms` has its lease released (and is followed instead while
 * local clients remain attached); a chat it follows with nothing delivered
 * for as long, no turn running and no local client has its subscription
 * dropped. Attaching follows it again (filling the gap from the stream), and
 * a message for it takes the free lease.
 *
 * client_msg_id memory: every `user` event mirrored here carries the id its
 * writer accepted, and is recorded in this node's own memory. A node that
 * takes a chat over has mirrored everything the stream holds first, so a
 * resend to it after the takeover is acknowledged as a duplicate. The ids come
 * from the fenced append itself: an id is known to the cluster exactly when
 * its message is.
 */
import type { Mirrored } from "../chat/hub.ts";
import type { ChatStorage } from "../chat/storage.ts";
import type { ForwardedFrame, MessageSender, QueuedTurn } from "../clients/chat-actions.ts";
import { MESSAGE_NOT_STORED, STORAGE_ERROR } from "../protocol/errors.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { EventArchive } from "../store/event-archive.ts";
import { Archiver } from "./archiver.ts";
import type { ClusterConnection } from "./cluster.ts";
import { ClusterStorage } from "./cluster-storage.ts";
import { ClusterEventLog } from "./event-log.ts";
import { ClusterFanout } from "./fanout.ts";
import { SharedHistory } from "./history.ts";
import { answeredWithin, RedisTimeoutError, settledWithin } from "./command-timeout.ts";
import { ChatLeases, newNodeId } from "./lease.ts";
import { type MirroredEvent, QueuedMessages } from "./queued-messages.ts";

type ArchiveOption = "cluster_archive_interval_ms" | "cluster_archive_batch_events" | "cluster_archive_max_queued_events" | "cluster_archive_max_behind_events";

export interface ClusterNodeDeps {
  connection: ClusterConnection;
  local: ChatStorage;
  config: Pick<Config, "cluster_lease_ms" | "cluster_stream_max_events" | "cluster_idle_ms" | "cluster_history_wait_ms" | "cluster_redis_command_timeout_ms" | "cluster_api_reply_ms" | "cluster_nodes_colocated" | "max_queued_turns" | ArchiveOption>;
  /** The durable history on PostgreSQL (store_postgres_url): the chats this node writes are archived there, older history is read from there. */
  archive?: EventArchive;
  /** Reveals an event another node appended (hub.mirror): skipped when its seq is held here, withheld behind this node's own unrevealed events of the chat. */
  mirror: (chatId: string, seq: number, frame: string, event: object) => Mirrored;
  /** Runs `fn` once everything this node published so far is settled: revealed, or refused (hub.afterCommit). */
  whenSettled: (fn: () => void) => void;
  /** This node's client frames of the chat for seqs first..last, or undefined unless it holds every one (another node asked: history.ts). */
  readRange: (chatId: string, first: number, last: number) => Promise<string[] | undefined>;
  /** Whether this node holds seqs first..last of the chat: a cheap check before readRange. */
  holdsRange: (chatId: string, first: number, last: number) => Promise<boolean>;
  /** The newest seq this node has of the chat (hub.latestSeq). */
  latestSeq: (chatId: string) => number;
  /** Is a turn running or queued in the chat here? */
  busy: (chatId: string) => boolean;
  /** This node's sockets attached to the chat. */
  localSubscribers: (chatId: string) => number;
  /** After a takeover's catch-up: this node numbers the chat's events past `seq` (hub.continueAfter). */
  continueAfter: (chatId: string, seq: number) => void;
  /** Ends a turn whose writer died (publishes turn_end interrupted and goal_status idle). */
  closeTurn: (chatId: string, turnId: string) => void;
  /** Runs a message a dead writer accepted but had not started (its user event is published): ChatActions.runQueued. */
  runQueued: (chatId: string, message: QueuedTurn) => void;
  /** Records a client_msg_id the chat's writer accepted (its `user` event was mirrored here). */
  remember: (chatId: string, clientMsgId: string) => void;
  /** Handles a frame another node received for a chat this node writes (ChatActions.forwarded). */
  runForwarded: (sender: MessageSender, frame: ForwardedFrame) => void;
  /** Publishes a chat event here, the chat's writer (hub.publish): its seq, 0 if refused. */
  publish: (event: PublishedMessage) => number;
  /** Stops the chat's turn here, the chat's writer (runs.stop): how many turns were stopped. */
  stop: (chatId: string) => number;
  log: Logger;
}

/** How long replies (ack, error) to a forwarded message are awaited at least: longer than any commit takes (a chats-API request, longer if cluster_api_reply_ms is). */
const FORWARD_REPLY_MS = 60_000;

/** Redis did not answer the PUBLISH handing a frame to the chat's writer: the writer may have received it. */
class MaybeForwardedError extends RedisTimeoutError {
  constructor(chatId: string, cause: RedisTimeoutError) {
    super(`a forwarded frame of chat ${chatId}`, 0);
    this.message = cause.message;
    this.cause = cause;
  }
}

/** A proactive message of the chats API (POST /api/chats/{id}/messages). */
export interface PublishedMessage {
  event: "message";
  chat_id: string;
  text: string;
  kind?: string;
}

/** What a node hands to a chat's writer: a client's frame, or a chats-API publish or stop. */
type Forwarded = ForwardedFrame | { type: "publish"; chat_id: string; message: PublishedMessage } | { type: "stop_chat"; chat_id: string };

/** The writer's answer to a forwarded chats-API request ({seq} or {stopped}); ends its route like an ack. */
const API_ANSWER = "api_answer";

/**
 * What travels through node inboxes. A message's inline media rides in a key
 * of its own (`media_key`, read once by the writer), not in the pub/sub frame:
 * Redis drops a subscriber whose output buffer passes its pub/sub limit (32 MB
 * by default), and a message may carry more.
 */
type InboxFrame =
  | { kind: "message"; from: string; ref: string; client_id: string; remote: string; local: boolean; work: Forwarded; media_key?: string }
  | { kind: "reply"; ref: string; frame: string }
  | { kind: "history"; ref: string; key: string };

export class ClusterNode {
  readonly nodeId = newNodeId();
  readonly storage: ClusterStorage;
  readonly #leases: ChatLeases;
  readonly #eventLog: ClusterEventLog;
  readonly #fanout: ClusterFanout;
  readonly #history: SharedHistory;
  /** Mirrored chats whose turn is running (chat → turn_id): the ones to take over if their writer dies. */
  readonly #runningTurns = new Map<string, string>();
  readonly #watchTimer: Timer;
  readonly #idleTimer: Timer;
  /** Messages the writers of mirrored chats accepted and have not started: run here by a takeover. */
  readonly #queued: QueuedMessages;
  /** Chats whose mirrored events the hub withheld: delivered again once this node's own events are settled. */
  readonly #withheld = new Set<string>();
  /** Takeovers under way (a second caller waits for the first). */
  readonly #takingOver = new Map<string, Promise<boolean>>();
  /** Messages this node forwarded: where their replies go, oldest first. */
  readonly #awaitingReplies = new Map<string, { sender: MessageSender; until: number }>();
  #nextRef = 0;
  /** How long a forwarded frame's replies are routed back: never shorter than a chats-API request waits for its answer. */
  get #replyLifetimeMs(): number {
    return Math.max(FORWARD_REPLY_MS, this.deps.config.cluster_api_reply_ms);
  }
  /** Shutting down: no takeovers, and forwarded messages are sent back (the sender resends to the next writer). */
  #stopping = false;

  constructor(private readonly deps: ClusterNodeDeps) {
    const { connection, config, log, archive } = deps;
    const eventLog = new ClusterEventLog(connection.redis, connection.keys, config.cluster_stream_max_events, archive && config.cluster_archive_max_behind_events);
    const archiver =
      archive &&
      new Archiver(eventLog, archive, { intervalMs: config.cluster_archive_interval_ms, batchEvents: config.cluster_archive_batch_events, maxQueuedEvents: config.cluster_archive_max_queued_events, commandTimeoutMs: config.cluster_redis_command_timeout_ms }, (msg, fields) => log.warn(msg, fields));
    this.#leases = new ChatLeases(connection.redis, connection.keys, this.nodeId, config.cluster_lease_ms, config.cluster_redis_command_timeout_ms);
    this.#eventLog = eventLog;
    this.#queued = new QueuedMessages(config.max_queued_turns + 1);
    this.storage = new ClusterStorage(deps.local, this.#leases, eventLog, { warn: (msg, fields) => log.warn(msg, fields), takeOver: (chatId) => this.#takeOver(chatId) }, config.cluster_redis_command_timeout_ms, archiver);
    this.#history = new SharedHistory(connection, this.nodeId, deps, config.cluster_history_wait_ms, log, archive);
    this.#fanout = new ClusterFanout(connection.subscriber, eventLog, connection.keys, {
      deliver: (chatId, seq, frame) => this.#mirror(chatId, seq, frame),
      older: (chatId, from, to) => this.#history.request(chatId, from, to),
      trimmed: (chatId, from, to) => log.warn("events no longer in the chat's Redis stream, nor in the durable history or on another node, were not mirrored", { chat_id: chatId, from, to }),
      error: (chatId, error) => log.error("could not mirror a chat's events", { chat_id: chatId, error: String(error) }),
    }, config.cluster_redis_command_timeout_ms);
    this.#watchTimer = setInterval(() => void this.#watchWriters(), Math.max(1, Math.floor(config.cluster_lease_ms / 2)));
    this.#watchTimer.unref();
    this.#idleTimer = setInterval(() => void this.#dropIdle(), Math.max(1, Math.floor(config.cluster_idle_ms / 2)));
    this.#idleTimer.unref();
  }

  /**
   * Before a client reads a chat this node does not write: it follows the chat
   * (another node may write it now or later) and has caught up when the promise
   * resolves. Its own events coming back are skipped by the hub (seq already held).
   */
  async follow(chatId: string): Promise<void> {
    if (this.storage.owns(chatId)) return;
    await this.#fanout.follow(chatId, this.deps.latestSeq(chatId));
  }

  /**
   * The hub dropped this node's unrevealed events of the chat: another node
   * writes it. Its clients here go on from the last seq they were sent with the
   * new writer's events (those the refused ones hid included), mirrored.
   */
  disowned(chatId: string): void {
    // Events staged since the refused batch was sent (the hub dropped them too).
    this.storage.dropPending(chatId);
    this.#deliverAgain(chatId);
  }

  /** The fan-out delivers the chat again from the last seq this node revealed (following it if it did not). */
  #deliverAgain(chatId: string): void {
    if (this.#stopping) return;
    this.#fanout.resume(chatId, this.deps.latestSeq(chatId)).catch((e: unknown) => this.deps.log.error("could not follow a chat's new writer", { chat_id: chatId, error: String(e) }));
  }

  /** The last seq the chat's Redis stream numbered (0 for none). */
  numberedSeq(chatId: string): Promise<number> {
    return answeredWithin(this.#eventLog.lastSeq(chatId), this.deps.config.cluster_redis_command_timeout_ms, "a stream's last seq");
  }

  /** False while another node holds the chat's lease; a free lease is taken over here first. */
  async writableHere(chatId: string): Promise<boolean> {
    // A takeover under way: writable once it has caught up (a message numbered before that would reuse seqs).
    const takingOver = this.#takingOver.get(chatId);
    if (takingOver) return takingOver;
    if (this.storage.owns(chatId)) return true;
    const holder = await this.#leases.holder(chatId);
    if (holder !== undefined) return holder.nodeId === this.nodeId;
    return this.#takeOver(chatId);
  }

  /** Starts listening on this node's inbox, and for other nodes' history requests. */
  async start(): Promise<void> {
    await this.deps.connection.subscriber.subscribe(this.deps.connection.keys.inbox(this.nodeId), (text) => this.#guardedInbox(text));
    await this.#history.start();
  }

  /** Inbox frames arrive in a Redis subscriber callback, outside any socket's error boundary: a throw is logged, never left to end the process. */
  #guardedInbox(text: string): void {
    try {
      this.#onInbox(text);
    } catch (e) {
      this.deps.log.error("could not handle a node inbox frame", { error: String(e) });
    }
  }

  /**
   * Hands a frame to the chat's writer through its inbox; the writer's
   * replies come back through this node's. A chat nobody writes any more is
   * taken over and the frame is handled here as it is; `leaving` makes what
   * goes to another node (ChatPlacement.forward).
   */
  async forward(sender: MessageSender, work: Forwarded, leaving?: (frame: ForwardedFrame) => Promise<ForwardedFrame>, attempts = 3): Promise<void> {
    const chatId = work.chat_id;
    const writer = await this.#writer(chatId);
    if (writer === this.nodeId) return this.#run(sender, work);
    // A takeover lost to another node meanwhile: asked again (a few times at most while leases change hands).
    if (writer === undefined) return attempts > 1 ? this.forward(sender, work, leaving, attempts - 1) : this.#notRun(sender, chatId);
    const outgoing = leaving && work.type !== "publish" && work.type !== "stop_chat" ? await leaving(work) : work;
    const { redis, keys } = this.deps.connection;
    const timeoutMs = this.deps.config.cluster_redis_command_timeout_ms;
    const ref = `${this.nodeId}:${this.#nextRef++}`;
    this.#forgetOldReplies();
    this.#awaitingReplies.set(ref, { sender, until: Date.now() + this.#replyLifetimeMs });
    // Local trust is this node's judgement (its loopback, its filesystem): it travels only between co-located nodes.
    const local = sender.data.local && this.deps.config.cluster_nodes_colocated;
    const frame: InboxFrame = { kind: "message", from: this.nodeId, ref, client_id: sender.data.clientId, remote: sender.data.remote, local, work: outgoing };
    if (outgoing.type === "message" && outgoing.media?.length) {
      frame.media_key = keys.forwardedMedia(ref);
      frame.work = { ...outgoing, media: [] };
      await answeredWithin(redis.set(frame.media_key, JSON.stringify(outgoing.media), "PX", this.#replyLifetimeMs), timeoutMs, "a forwarded message's media");
    }
    const receivers = await answeredWithin(redis.publish(keys.inbox(writer), JSON.stringify(frame)), timeoutMs, "a forwarded message").catch((e: unknown) => {
      // Unanswered is not unsent: the writer may have it, and its reply still comes back through #awaitingReplies.
      throw e instanceof RedisTimeoutError ? new MaybeForwardedError(chatId, e) : e;
    });
    if (receivers === 0) {
      // The writer is gone and its lease not yet lapsed.
      this.#awaitingReplies.delete(ref);
      this.#notRun(sender, chatId);
    }
  }

  /**
   * The node writing the chat, asked of Redis (not of this node's fence, which
   * a renewal may be about to lose): this node's id when it is this node (a
   * free lease is taken over here first), undefined when a takeover was lost
   * to another node meanwhile (ask again). The one answer to "writable here or
   * forwarded" for frames from other nodes and for frames sent on.
   */
  async #writer(chatId: string): Promise<string | undefined> {
    const holder = await this.#leases.holder(chatId);
    if (holder === undefined) return (await this.#takeOver(chatId)) ? this.nodeId : undefined;
    if (holder.nodeId !== this.nodeId) return holder.nodeId;
    return (await this.writableHere(chatId)) ? this.nodeId : undefined;
  }

  /**
   * POST /api/chats/{id}/messages on a node that does not write the chat: the
   * writer publishes it (or this node, taking a free lease). Its seq; 0 when
   * nothing was stored (the writer refused, or went away); undefined when the
   * writer did not answer within cluster_api_reply_ms (it may still publish it).
   */
  publishElsewhere(message: PublishedMessage): Promise<number | undefined> {
    return this.#askWriter({ type: "publish", chat_id: message.chat_id, message }, "seq");
  }

  /** POST /api/chats/{id}/stop on a node that does not write the chat: how many turns the writer stopped; undefined when it did not answer in time. */
  stopElsewhere(chatId: string): Promise<number | undefined> {
    return this.#askWriter({ type: "stop_chat", chat_id: chatId }, "stopped");
  }

  /** A chats-API request handed to the chat's writer: the number its answer carries under `field` (0 for any other answer), undefined for none in time. */
  #askWriter(work: Forwarded, field: "seq" | "stopped"): Promise<number | undefined> {
    const { promise: answer, resolve } = Promise.withResolvers<number>();
    const sender: MessageSender = {
      send: (frame) => resolve((JSON.parse(frame) as Record<string, number | undefined>)[field] ?? 0),
      data: { clientId: "chats-api", remote: "", local: false },
    };
    this.forward(sender, work).catch((e: unknown) => {
      this.deps.log.error("could not hand a chats-API request to the chat's writer", { chat_id: work.chat_id, error: String(e) });
      // Perhaps handed over: its answer may still come; none in time is "outcome unknown", never "nothing was done".
      if (!(e instanceof MaybeForwardedError)) resolve(0);
    });
    return settledWithin(answer, this.deps.config.cluster_api_reply_ms, () => undefined);
  }

  /** On the chat's writer: a forwarded frame handled as if received here. */
  #run(sender: MessageSender, work: Forwarded): void {
    if (work.type === "stop_chat") return void sender.send(JSON.stringify({ event: API_ANSWER, chat_id: work.chat_id, stopped: this.deps.stop(work.chat_id) }));
    if (work.type !== "publish") return this.deps.runForwarded(sender, work);
    const seq = this.deps.publish(work.message);
    if (seq === 0) return this.#notRun(sender, work.chat_id);
    sender.send(JSON.stringify({ event: API_ANSWER, chat_id: work.chat_id, seq }));
  }

  /** Nothing was stored: the client sends again (with a client_msg_id its resend runs once). */
  #notRun(sender: MessageSender, chatId: string): void {
    sender.send(JSON.stringify({ event: "error", detail: STORAGE_ERROR, reason: MESSAGE_NOT_STORED, chat_id: chatId }));
  }

  #onInbox(text: string): void {
    // Only peer nodes write this channel; a frame that does not parse is logged by #guardedInbox.
    const frame = JSON.parse(text) as InboxFrame;
    if (frame.kind === "reply") return this.#onReply(frame.ref, frame.frame);
    if (frame.kind === "history") return this.#history.answered(frame.ref, frame.key);
    if (this.#stopping) return this.#notRun(this.#replyTo(frame), frame.work.chat_id);
    void this.#runIfWriter(this.#replyTo(frame), frame);
  }

  /** Where the replies to a forwarded message go: the sending node's inbox, tagged with the message's ref. */
  #replyTo(frame: InboxFrame & { kind: "message" }): MessageSender {
    const { from, ref } = frame;
    const inbox = this.deps.connection.keys.inbox(from);
    return {
      // A reply lost to a Redis failure leaves the client without its ack: it resends, and the resend is acked as a duplicate.
      send: (reply) => void this.deps.connection.redis.publish(inbox, JSON.stringify({ kind: "reply", ref, frame: reply } satisfies InboxFrame)).catch(() => {}),
      // Local trust only between co-located nodes, as this node is configured: a frame from Redis is not enough.
      data: { clientId: frame.client_id, remote: frame.remote, local: frame.local && this.deps.config.cluster_nodes_colocated },
    };
  }

  /**
   * A forwarded message runs only where the chat is written: the sender's node
   * saw this node as the writer, but the lease may have moved since (asked of
   * Redis, not of this node's fence, which a renewal may be about to lose).
   */
  async #runIfWriter(sender: MessageSender, frame: InboxFrame & { kind: "message" }): Promise<void> {
    const { work, media_key } = frame;
    const chatId = work.chat_id;
    try {
      const writable = (await this.#writer(chatId)) === this.nodeId;
      if (writable && media_key !== undefined && work.type === "message") {
        const media = (await this.deps.connection.redis.send("GETDEL", [media_key])) as string | null;
        // Expired (the sender has stopped waiting for this message's replies by now): told like any message not run.
        if (media === null) return this.#notRun(sender, chatId);
        return this.#run(sender, { ...work, media: JSON.parse(media) as unknown[] });
      }
      if (writable) return this.#run(sender, work);
    } catch (e) {
      this.deps.log.error("could not check a forwarded frame's chat writer", { chat_id: chatId, error: String(e) });
    }
    this.#notRun(sender, chatId);
  }

  /** A reply to a message this node forwarded goes to its sender; the ack or an error is the last one (the route is forgotten). */
  #onReply(ref: string, text: string): void {
    const awaiting = this.#awaitingReplies.get(ref);
    if (!awaiting) return;
    awaiting.sender.send(text);
    const { event } = JSON.parse(text) as { event?: string };
    if (event === "message_ack" || event === "error" || event === API_ANSWER) this.#awaitingReplies.delete(ref);
  }

  /** Entries are added in time order with one lifetime: stop at the first still awaited. */
  #forgetOldReplies(): void {
    const now = Date.now();
    for (const [ref, { until }] of this.#awaitingReplies) {
      if (until > now) return;
      this.#awaitingReplies.delete(ref);
    }
  }

  /** Shutdown begins: no more takeovers, forwarded messages sent back; mirroring goes on while this node's clients are served. */
  stop(): void {
    this.#stopping = true;
    clearInterval(this.#watchTimer);
    clearInterval(this.#idleTimer);
  }

  /** Leases of idle chats released, subscriptions of idle chats nobody here reads dropped. */
  async #dropIdle(): Promise<void> {
    const { busy, localSubscribers, latestSeq, config, log } = this.deps;
    const before = Date.now() - config.cluster_idle_ms;
    try {
      for (const chatId of this.storage.idleSince(before)) {
        if (busy(chatId)) continue;
        await this.storage.release(chatId);
        // Its clients here keep seeing the chat, whoever writes it next.
        if (localSubscribers(chatId) > 0) await this.#fanout.follow(chatId, latestSeq(chatId));
      }
      for (const chatId of this.#fanout.idleSince(before)) {
        if (this.#runningTurns.has(chatId) || localSubscribers(chatId) > 0 || this.storage.owns(chatId)) continue;
        await this.#fanout.unfollow(chatId);
      }
    } catch (e) {
      log.warn("could not release an idle chat; tried again later", { error: String(e) });
    }
  }

  /** Shutdown, after the hub's last commit and before the storage closes: nothing more arrives from Redis (inbox, followed chats). The leases go with the storage's close. */
  async close(): Promise<void> {
    this.stop();
    const { subscriber, keys } = this.deps.connection;
    await Promise.allSettled([subscriber.unsubscribe(keys.inbox(this.nodeId)), this.#history.stop(), this.#fanout.close()]);
  }

  #mirror(chatId: string, seq: number, frame: string): void {
    const event = JSON.parse(frame) as MirroredEvent & { client_msg_id?: unknown };
    const mirrored = this.deps.mirror(chatId, seq, frame, event);
    if (mirrored === "withheld") return this.#withhold(chatId);
    // A seq already held (this node's own event, or one seen before a redelivery) says nothing new: observing it
    // again would count a queued message twice, or one this node's refused event collided with.
    if (mirrored === "held") return;
    this.#queued.observe(chatId, seq, event);
    if (event.event === "goal_status" && event.turn_id !== undefined) {
      if (event.status === "running") this.#runningTurns.set(chatId, event.turn_id);
      else if (event.status === "idle") this.#runningTurns.delete(chatId);
    } else if (event.event === "user" && typeof event.client_msg_id === "string") {
      this.deps.remember(chatId, event.client_msg_id);
    }
  }

  /** Another writer's events wait behind this node's own unrevealed ones (refused, or appended first): delivered again once those are settled. */
  #withhold(chatId: string): void {
    if (this.#withheld.has(chatId)) return;
    this.#withheld.add(chatId);
    this.deps.whenSettled(() => {
      this.#withheld.delete(chatId);
      this.#deliverAgain(chatId);
    });
  }

  /** Chats mirrored mid-turn whose lease nobody holds any more are taken over. */
  async #watchWriters(): Promise<void> {
    // Replies that never came (a stop's, a writer that died) are forgotten here too, not only at the next forward.
    this.#forgetOldReplies();
    for (const chatId of this.#runningTurns.keys()) {
      if (this.#stopping) return;
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

  /**
   * The lease first (the old writer is fenced from then on), then every
   * published event (numbering continues past the stream's last seq, even one
   * it no longer holds), and only then writes; then the interrupted turn closed
   * and the messages its writer had queued run here, in order.
   * A failed catch-up gives the lease up again.
   */
  async #claim(chatId: string): Promise<boolean> {
    const caughtUp = async () => {
      const last = await this.numberedSeq(chatId);
      await this.#fanout.catchUp(chatId, this.deps.latestSeq(chatId), last);
      this.deps.continueAfter(chatId, last);
    };
    if (!(await this.storage.claim(chatId, caughtUp))) return false;
    const turnId = this.#runningTurns.get(chatId);
    if (turnId !== undefined) {
      this.#runningTurns.delete(chatId);
      this.deps.closeTurn(chatId, turnId);
      this.deps.log.warn("took over a chat whose writer stopped; its running turn is closed as interrupted", { chat_id: chatId, turn_id: turnId });
    }
    const queued = this.#queued.take(chatId);
    if (queued.length > 0) this.deps.log.warn("took over a chat whose writer stopped; running the messages it had queued", { chat_id: chatId, count: queued.length });
    for (const message of queued) this.deps.runQueued(chatId, message);
    return true;
  }
}
