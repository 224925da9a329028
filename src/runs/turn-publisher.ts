/**
 * Turns the frames of one agent turn into chat events: adds chat_id, turn_id and
 * stream ids, drops empty chunks, and, with streaming off, folds each streamed
 * segment into one `message`. Frames arriving after the turn closed are ignored,
 * so a late agent cannot write into a finished turn.
 */
import type { Hub } from "../hub.ts";
import type { AgentToolRequest, AgentTurnFrame } from "../protocol/agent.ts";

export interface TurnPublisherOptions {
  hub: Hub;
  chatId: string;
  turnId: string;
  streaming: boolean;
  startedMs: number;
  /** Seq of the turn's first event: unique in the chat, so `${it}:${segment}` names streams compactly. */
  turnSeq: number;
  onToolRequest: (frame: AgentToolRequest) => void;
}

export class TurnPublisher {
  #segment = 0;
  #segmentOpen = false;
  /** Text of the open segment, kept only when streaming is off. */
  #buffer = "";
  #closed = false;

  readonly #o: TurnPublisherOptions;

  constructor(options: TurnPublisherOptions) {
    this.#o = options;
  }

  /** Bound so agents can be handed `publisher.emit` directly. */
  readonly emit = (frame: AgentTurnFrame): void => {
    if (this.#closed) return;
    const { hub, chatId: chat_id, turnId: turn_id, streaming } = this.#o;
    switch (frame.type) {
      case "delta":
        if (frame.text === "") return;
        this.#segmentOpen = true;
        if (streaming) hub.publish({ event: "delta", chat_id, text: frame.text, stream_id: this.#streamId(), turn_id });
        else this.#buffer += frame.text;
        return;
      case "stream_end":
        this.#endSegment(frame.text);
        return;
      case "reasoning_delta":
        if (frame.text !== "") hub.publish({ event: "reasoning_delta", chat_id, text: frame.text, stream_id: this.#streamId(), turn_id });
        return;
      case "reasoning_end":
        hub.publish({ event: "reasoning_end", chat_id, stream_id: this.#streamId(), turn_id });
        return;
      case "message": {
        const { type: _type, turn_id: _agentTurnId, chat_id: _chat, ...fields } = frame;
        hub.publish({ event: "message", chat_id, ...fields, turn_id });
        return;
      }
      case "tool_request":
        this.#o.onToolRequest(frame);
        return;
      case "file_edit":
        hub.publish({ event: "file_edit", chat_id, edits: frame.edits, turn_id });
        return;
    }
  };

  /** Ends the turn: a segment still open is closed so clients can settle the bubble. */
  close(): void {
    if (this.#segmentOpen) this.#endSegment(undefined);
    this.#closed = true;
  }

  #streamId(): string {
    return `${this.#o.turnSeq}:${this.#segment}`;
  }

  /** `text`, when the agent sends it, is the segment's final full text. */
  #endSegment(text: string | undefined): void {
    const { hub, chatId: chat_id, turnId: turn_id, streaming, startedMs } = this.#o;
    if (streaming) {
      const end = { event: "stream_end" as const, chat_id, stream_id: this.#streamId(), turn_id };
      hub.publish(text === undefined ? end : { ...end, text });
    } else {
      const full = text ?? this.#buffer;
      if (full !== "") hub.publish({ event: "message", chat_id, text: full, latency_ms: Date.now() - startedMs, turn_id });
      this.#buffer = "";
    }
    this.#segmentOpen = false;
    this.#segment++;
  }
}
