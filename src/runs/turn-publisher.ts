/**
 * Turns the frames of one agent turn into chat events: adds chat_id, turn_id and
 * stream ids, drops empty chunks, and, with streaming off, folds each streamed
 * segment into one `message`. Frames arriving after the turn closed are ignored,
 * so a late agent cannot write into a finished turn.
 *
 * Media: a `message` with media paths or local markdown images, and a segment
 * whose text has local markdown images, need file work (staging, signing). While
 * that runs, later frames wait in a queue, so the chat's order never changes. The
 * published event carries signed URLs; its `private` part keeps the agent's
 * original text and paths for the transcript.
 *
 * A streamed segment's text is not kept in memory (1 000 concurrent streams would
 * hold it all): each delta is checked for a possible "![", and only such a segment
 * is read back from the chat's stored events at stream_end to be rewritten.
 */
import type { Hub } from "../chat/hub.ts";
import type { OutboundMedia } from "../media/outbound.ts";
import type { AgentToolRequest, AgentTurnFrame } from "../protocol/agent.ts";

export interface TurnPublisherOptions {
  hub: Hub;
  media: OutboundMedia;
  chatId: string;
  turnId: string;
  streaming: boolean;
  startedMs: number;
  /** Seq of the turn's first event: unique in the chat, so `${it}:${segment}` names streams compactly. */
  turnSeq: number;
  onToolRequest: (frame: AgentToolRequest) => void;
  /** The chat's stored frames with seq ≥ fromSeq, oldest first. */
  readEvents: (chatId: string, fromSeq: number) => AsyncIterable<string>;
}

type MessageFrame = Extract<AgentTurnFrame, { type: "message" }>;
const hasLocalImages = (text: string | undefined) => text?.includes("![") ?? false;

export class TurnPublisher {
  #segment = 0;
  #segmentOpen = false;
  /** Text of the open segment, kept only with streaming off (it becomes one message). */
  #buffer = "";
  /** Seq of the open segment's first delta, and whether its text may hold a markdown image. */
  #segmentSeq = 0;
  #maybeImage = false;
  #endedWithBang = false;
  #closed = false;
  /** Frames waiting behind file work, in order; undefined when nothing is waiting. */
  #queue: AgentTurnFrame[] | undefined;
  #drained: Promise<void> = Promise.resolve();
  readonly #o: TurnPublisherOptions;

  constructor(options: TurnPublisherOptions) {
    this.#o = options;
  }

  /** Bound so agents can be handed `publisher.emit` directly. */
  readonly emit = (frame: AgentTurnFrame): void => {
    if (this.#closed) return;
    if (this.#queue) this.#queue.push(frame);
    else if (this.#needsFiles(frame)) {
      this.#queue = [frame];
      this.#drained = this.#drain();
    } else this.#publish(frame);
  };

  /** Ends the turn once queued frames are out: a segment still open is closed so clients can settle the bubble. */
  async close(): Promise<void> {
    await this.#drained;
    if (this.#segmentOpen) await this.#endSegment(undefined);
    this.#closed = true;
  }

  #needsFiles(frame: AgentTurnFrame): boolean {
    if (frame.type === "message") return (frame.media?.length ?? 0) > 0 || hasLocalImages(frame.text);
    if (frame.type !== "stream_end") return false;
    return frame.text !== undefined ? hasLocalImages(frame.text) : this.#o.streaming ? this.#maybeImage : hasLocalImages(this.#buffer);
  }

  /** Cheap per-delta check: "![" inside the chunk, or split across two chunks. */
  #noteDelta(text: string): void {
    if (!this.#maybeImage) this.#maybeImage = text.includes("![") || (this.#endedWithBang && text.startsWith("["));
    this.#endedWithBang = text.endsWith("!");
  }

  async #drain(): Promise<void> {
    for (let frame = this.#queue!.shift(); frame; frame = this.#queue!.shift()) {
      if (frame.type === "message" && this.#needsFiles(frame)) await this.#publishMessageWithMedia(frame);
      else if (frame.type === "stream_end") await this.#endSegment(frame.text);
      else this.#publish(frame);
    }
    this.#queue = undefined;
  }

  #publish(frame: AgentTurnFrame): void {
    const { hub, chatId: chat_id, turnId: turn_id, streaming } = this.#o;
    switch (frame.type) {
      case "delta": {
        if (frame.text === "") return;
        if (!streaming) {
          this.#segmentOpen = true;
          this.#buffer += frame.text;
          return;
        }
        const seq = hub.publish({ event: "delta", chat_id, text: frame.text, stream_id: this.#streamId(), turn_id });
        if (!this.#segmentOpen) this.#segmentSeq = seq;
        this.#segmentOpen = true;
        this.#noteDelta(frame.text);
        return;
      }
      case "stream_end":
        void this.#endSegment(frame.text);
        return;
      case "reasoning_delta":
        if (frame.text !== "") hub.publish({ event: "reasoning_delta", chat_id, text: frame.text, stream_id: this.#streamId(), turn_id });
        return;
      case "reasoning_end":
        hub.publish({ event: "reasoning_end", chat_id, stream_id: this.#streamId(), turn_id });
        return;
      case "message": {
        const { type: _type, turn_id: _agentTurnId, chat_id: _chat, media: _media, ...fields } = frame;
        hub.publish({ event: "message", chat_id, ...fields, turn_id });
        return;
      }
      case "file_edit":
        hub.publish({ event: "file_edit", chat_id, edits: frame.edits, turn_id });
        return;
      case "tool_request":
        this.#o.onToolRequest(frame);
        return;
    }
  }

  async #publishMessageWithMedia(frame: MessageFrame): Promise<void> {
    const { hub, media, chatId: chat_id, turnId: turn_id } = this.#o;
    const { type: _type, turn_id: _agentTurnId, chat_id: _chat, media: paths = [], text, ...fields } = frame;
    const media_urls = await media.urls(chat_id, paths);
    const rewritten = await media.rewrite(chat_id, text);
    hub.publish({
      event: "message",
      chat_id,
      text: rewritten,
      ...(media_urls.length > 0 && { media_urls }),
      ...fields,
      turn_id,
      private: { text, media: paths },
    });
  }

  #streamId(): string {
    return `${this.#o.turnSeq}:${this.#segment}`;
  }

  /** The open streamed segment's text, read back from the chat's stored events. */
  async #segmentText(): Promise<string> {
    const streamId = `"stream_id":"${this.#streamId()}"`;
    let text = "";
    for await (const line of this.#o.readEvents(this.#o.chatId, this.#segmentSeq)) {
      if (line.includes('"event":"delta"') && line.includes(streamId)) text += (JSON.parse(line) as { text: string }).text;
    }
    return text;
  }

  /** `text`, when the agent sends it, is the segment's final full text. Local images in it are published. */
  async #endSegment(text: string | undefined): Promise<void> {
    const { hub, media, chatId: chat_id, turnId: turn_id, streaming, startedMs } = this.#o;
    const full = text ?? (streaming ? (this.#maybeImage ? await this.#segmentText() : "") : this.#buffer);
    const rewritten = hasLocalImages(full) ? await media.rewrite(chat_id, full) : full;
    const changed = rewritten !== full;
    const original = changed ? { private: { text: full } } : {};
    if (streaming) {
      const end = { event: "stream_end" as const, chat_id, stream_id: this.#streamId(), turn_id };
      hub.publish(text === undefined && !changed ? end : { ...end, text: rewritten, ...original });
    } else if (rewritten !== "") {
      hub.publish({ event: "message", chat_id, text: rewritten, latency_ms: Date.now() - startedMs, turn_id, ...original });
    }
    this.#buffer = "";
    this.#segmentOpen = false;
    this.#maybeImage = false;
    this.#endedWithBang = false;
    this.#segment++;
  }
}
