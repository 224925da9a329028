/**
 * Turns the frames of one agent turn into chat events: adds chat_id, turn_id and
 * stream ids, drops empty chunks, and, with streaming off, folds each streamed
 * segment into one `message`. Frames arriving after the turn closed are ignored,
 * so a late agent cannot write into a finished turn.
 *
 * No server path reaches a client, not even for the length of a delta: a delta's
 * tail that may still become a markdown image is held back (bounded, see
 * media/markdown.ts) and joins the next delta; complete local images become
 * signed URLs (or their alt text) before the delta is published, so the text a
 * client assembles from deltas is final and stream_end needs no read-back. A
 * stream_end with the agent's own text is rewritten the same way, with the same
 * URLs (one cache per segment), so it equals the assembled deltas.
 *
 * Frames needing file work (staging, signing) wait in a queue with every later
 * frame, so the chat's order never changes. Published events carry signed URLs;
 * their `private` part keeps the agent's original text and paths for the transcript.
 *
 * It also measures what the turn-end log line and metrics report about the
 * agent's stream (time to the first token, number of deltas), counted on the way
 * through `emit` (an increment per frame) rather than by a wrapper around it: a
 * delta is the hot path, and each layer on it is one more function for JSC to
 * compile at a fresh gateway's first stream.
 */
import type { Hub } from "../chat/hub.ts";
import type { Logger } from "../log.ts";
import type { ImageUrlCache, OutboundMedia } from "../media/outbound.ts";
import { isImage, type Piece } from "../media/markdown.ts";
import type { AgentToolRequest, AgentTurnFrame } from "../protocol/agent.ts";
import { AgentOutput, hasImages } from "./agent-output.ts";

/** What the turn-end line reports about the agent's stream: ttft_ms is absent when the agent said nothing. */
export interface TurnStats {
  ttft_ms?: number;
  deltas: number;
}

export interface TurnPublisherOptions {
  hub: Hub;
  output: AgentOutput;
  chatId: string;
  turnId: string;
  streaming: boolean;
  startedMs: number;
  /** Seq of the turn's first event: unique in the chat, so `${it}:${segment}` names streams compactly. */
  turnSeq: number;
  onToolRequest: (frame: AgentToolRequest) => void;
  log: Logger;
}

export class TurnPublisher {
  #segment = 0;
  /** `${turnSeq}:${segment}`, built once per segment. */
  #streamId: string;
  #segmentOpen = false;
  /** Text of the open segment, kept only with streaming off (it becomes one message). */
  #buffer = "";
  /** Streaming: the tail of the segment's text that may still become an image, not yet published. */
  #held = "";
  /** The open segment's image URLs, so a path gets one URL in its deltas and its stream_end text. */
  #images: ImageUrlCache = new Map();
  #closed = false;
  /** The last split of held text + a delta (`#needsFiles` then `#delta` ask for the same one). */
  #lastSplit: { held: string; text: string; split: ReturnType<OutboundMedia["split"]> } | undefined;
  /** Frames waiting behind file work, in order; undefined when nothing is waiting. */
  #queue: AgentTurnFrame[] | undefined;
  #drained: Promise<void> = Promise.resolve();
  /** The agent's delta frames (empty ones too) and when its first token (delta, reasoning or message) came. */
  #deltas = 0;
  #firstTokenMs: number | undefined;
  readonly #turn: TurnPublisherOptions;

  constructor(options: TurnPublisherOptions) {
    this.#turn = options;
    this.#streamId = `${options.turnSeq}:0`;
  }

  /** The agent's frames, counted for the turn's stats. Bound so agents can be handed `publisher.emit` directly. */
  readonly emit = (frame: AgentTurnFrame): void => {
    if (frame.type === "delta") {
      this.#deltas++;
      this.#firstTokenMs ??= Date.now();
      // The per-event common case (a streamed delta that cannot touch an image: nothing held, no "!"; nothing
      // queued) is published here, with no call but the hub's: each function on this path is one more for JSC
      // to compile, and inline again into its callers, during a fresh gateway's first stream.
      const text = frame.text;
      if (text !== "" && !this.#closed && this.#queue === undefined && this.#turn.streaming && this.#held === "" && !text.includes("!")) {
        this.#segmentOpen = true;
        const { hub, chatId: chat_id, turnId: turn_id } = this.#turn;
        hub.publish({ event: "delta", chat_id, text, stream_id: this.#streamId, turn_id });
        return;
      }
    } else if (frame.type === "reasoning_delta" || frame.type === "message") this.#firstTokenMs ??= Date.now();
    this.#accept(frame);
  };

  /** The gateway's own message in the turn (the agent failed): published like the agent's, not counted as its output. */
  say(text: string): void {
    this.#accept({ type: "message", text });
  }

  /** Fields for the turn-end line and metrics. */
  stats(): TurnStats {
    return { ttft_ms: this.#firstTokenMs === undefined ? undefined : this.#firstTokenMs - this.#turn.startedMs, deltas: this.#deltas };
  }

  #accept(frame: AgentTurnFrame): void {
    if (this.#closed) return;
    if (this.#queue) this.#queue.push(frame);
    else if (this.#needsFiles(frame)) {
      this.#queue = [frame];
      this.#drained = this.#drain();
    } else void this.#publish(frame);
  }

  /** Ends the turn once queued frames are out: a segment still open is closed so clients can settle the bubble. */
  async close(): Promise<void> {
    await this.#drained;
    if (this.#segmentOpen || this.#held !== "") await this.#endSegment(undefined);
    this.#closed = true;
  }

  #needsFiles(frame: AgentTurnFrame): boolean {
    switch (frame.type) {
      case "message":
        return AgentOutput.needsFiles(frame);
      case "delta":
        return this.#turn.streaming && this.#mayHoldImage(frame.text) && this.#split(frame.text).pieces.some(isImage);
      case "stream_end":
        return hasImages(frame.text ?? (this.#turn.streaming ? undefined : this.#buffer)) || this.#tail().some(isImage);
      default:
        return false;
    }
  }

  /** Cheap check first: with nothing held and no "!" a delta cannot touch an image. */
  #mayHoldImage(text: string): boolean {
    return this.#held !== "" || text.includes("!");
  }

  /** The held tail plus `text`, split into pieces (computed once per held text and delta). */
  #split(text: string): ReturnType<OutboundMedia["split"]> {
    const last = this.#lastSplit;
    if (last && last.held === this.#held && last.text === text) return last.split;
    const split = this.#turn.output.media.split(this.#held + text);
    this.#lastSplit = { held: this.#held, text, split };
    return split;
  }

  async #drain(): Promise<void> {
    for (let frame = this.#queue!.shift(); frame; frame = this.#queue!.shift()) {
      try {
        await this.#publish(frame);
      } catch (e) {
        this.#turn.log.error("publishing an agent frame failed", { chat_id: this.#turn.chatId, turn_id: this.#turn.turnId, type: frame.type, error: String(e) });
      }
    }
    this.#queue = undefined;
  }

  /** Synchronous unless the frame needs file work. */
  #publish(frame: AgentTurnFrame): Promise<void> | undefined {
    const { hub, chatId: chat_id, turnId: turn_id } = this.#turn;
    switch (frame.type) {
      case "delta":
        return this.#delta(frame.text);
      case "stream_end":
        return this.#endSegment(frame.text);
      case "reasoning_delta":
        if (frame.text !== "") hub.publish({ event: "reasoning_delta", chat_id, text: frame.text, stream_id: this.#streamId, turn_id });
        return;
      case "reasoning_end":
        hub.publish({ event: "reasoning_end", chat_id, stream_id: this.#streamId, turn_id });
        return;
      case "message": {
        const { type: _type, turn_id: _agentTurnId, chat_id: _chat, ...message } = frame;
        return this.#turn.output.publishMessage(chat_id, message, turn_id);
      }
      case "file_edit":
        hub.publish({ event: "file_edit", chat_id, edits: frame.edits, turn_id });
        return;
      case "tool_request":
        this.#turn.onToolRequest(frame);
        return;
    }
  }

  #delta(text: string): Promise<void> | undefined {
    if (text === "") return;
    if (!this.#turn.streaming) {
      this.#segmentOpen = true;
      this.#buffer += text;
      return;
    }
    if (!this.#mayHoldImage(text)) return void this.#publishDelta(text, text);
    const input = this.#held + text;
    const { pieces, held } = this.#split(text);
    this.#lastSplit = undefined;
    this.#held = held;
    const original = input.slice(0, input.length - held.length);
    if (!pieces.some(isImage)) return void this.#publishDelta(original, original);
    return this.#turn.output.media.render(this.#turn.chatId, pieces, this.#images).then((rendered) => this.#publishDelta(rendered, original));
  }

  #publishDelta(text: string, original: string): void {
    if (original === "") return;
    this.#segmentOpen = true;
    if (text === "") return;
    const { hub, chatId: chat_id, turnId: turn_id } = this.#turn;
    const event = { event: "delta" as const, chat_id, text, stream_id: this.#streamId, turn_id };
    hub.publish(text === original ? event : { ...event, private: { text: original } });
  }

  /** The held tail at the segment's end: nothing more will arrive, so it is split as final text. */
  #tail(): Piece[] {
    return this.#held === "" ? [] : this.#turn.output.media.split(this.#held, true).pieces;
  }

  /**
   * `text`, when the agent sends it, is the segment's final full text. The held
   * tail goes out first, its images rendered. Synchronous unless images need publishing.
   */
  #endSegment(text: string | undefined): Promise<void> | undefined {
    const full = text ?? (this.#turn.streaming ? undefined : this.#buffer);
    const tail = this.#tail();
    if (!hasImages(full) && !tail.some(isImage)) return void this.#closeSegment(full, full, this.#held);
    return this.#rewriteAndClose(full, tail);
  }

  async #rewriteAndClose(full: string | undefined, tail: Piece[]): Promise<void> {
    const { chatId, output } = this.#turn;
    const tailText = await output.media.render(chatId, tail, this.#images);
    const rewritten = full !== undefined && hasImages(full) ? await output.media.rewrite(chatId, full, this.#images) : full;
    this.#closeSegment(rewritten, full, tailText);
  }

  /** `tail`: the held text as it may be published. */
  #closeSegment(text: string | undefined, original: string | undefined, tail: string): void {
    const { hub, chatId: chat_id, turnId: turn_id, streaming, startedMs } = this.#turn;
    const keep = text === original ? {} : { private: { text: original } };
    if (streaming) {
      this.#publishDelta(tail, this.#held);
      const end = { event: "stream_end" as const, chat_id, stream_id: this.#streamId, turn_id };
      hub.publish(text === undefined ? end : { ...end, text, ...keep });
    } else if (text) {
      hub.publish({ event: "message", chat_id, text, latency_ms: Date.now() - startedMs, turn_id, ...keep });
    }
    this.#buffer = "";
    this.#held = "";
    this.#images = new Map();
    this.#segmentOpen = false;
    this.#segment++;
    this.#streamId = `${this.#turn.turnSeq}:${this.#segment}`;
  }
}
