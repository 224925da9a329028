/**
 * Agent output into chats: the one translation every agent `message` goes
 * through, in a turn or outside one (proactive). Its media paths are staged and
 * signed, local markdown images in its text become signed URLs (or their alt
 * text), and the event is published through the hub with the agent's originals
 * kept `private` for the transcript. Frames outside turns (messages, titles)
 * reach each chat in the order the agent sent them, even while one of them waits
 * for file work; a failure there is logged (inside a turn the agent's frame
 * boundary answers it).
 */
import type { AgentEvents, ProactiveMessage } from "../agents/agent.ts";
import type { Hub } from "../chat/hub.ts";
import type { Logger } from "../log.ts";
import type { OutboundMedia } from "../media/outbound.ts";
/** Where an agent's chat titles go (the store). */
export interface ChatTitles {
  ensure(chatId: string): void;
  setTitle(chatId: string, title: string): void;
}

export interface AgentOutputDeps {
  hub: Hub;
  media: OutboundMedia;
  titles: ChatTitles;
  announceModel(modelName: string, modelPreset?: string): void;
  log: Logger;
}

export const hasImages = (text: string | undefined) => text?.includes("![") ?? false;

export class AgentOutput {
  /** Per chat: the proactive work still running; later frames for the chat wait behind it. */
  readonly #pending = new Map<string, Promise<void>>();

  constructor(private readonly deps: AgentOutputDeps) {}

  get media(): OutboundMedia {
    return this.deps.media;
  }

  /** Does publishing this message need file work (staging, signing)? */
  static needsFiles(frame: ProactiveMessage): boolean {
    return (frame.media?.length ?? 0) > 0 || hasImages(frame.text);
  }

  /** Publishes an agent message into the chat, inside the turn when `turnId` is given; synchronous unless it needs files. */
  publishMessage(chatId: string, frame: ProactiveMessage, turnId?: string): Promise<void> | undefined {
    const { media: paths = [], text, ...fields } = frame;
    const inTurn = turnId === undefined ? {} : { turn_id: turnId };
    if (!AgentOutput.needsFiles(frame)) {
      this.deps.hub.publish({ event: "message", chat_id: chatId, text, ...fields, ...inTurn });
      return undefined;
    }
    return this.#publishWithFiles(chatId, text, paths, fields, inTurn);
  }

  async #publishWithFiles(chatId: string, text: string, paths: string[], fields: object, inTurn: object): Promise<void> {
    const { hub, media } = this.deps;
    const media_urls = await media.urls(chatId, paths);
    const rewritten = await media.rewrite(chatId, text);
    hub.publish({
      event: "message",
      chat_id: chatId,
      text: rewritten,
      ...(media_urls.length > 0 && { media_urls }),
      ...fields,
      ...inTurn,
      private: { text, media: paths },
    });
  }

  /** What agents may do outside turns. */
  readonly events: AgentEvents = {
    proactiveMessage: (chatId, frame) => this.#inOrder(chatId, () => this.publishMessage(chatId, frame)),
    sessionUpdate: (chatId, title) => {
      if (title === undefined) return;
      this.#inOrder(chatId, () => {
        this.deps.titles.ensure(chatId);
        this.deps.titles.setTitle(chatId, title);
        this.deps.hub.publish({ event: "session_updated", chat_id: chatId, scope: "metadata", title });
      });
    },
    model: (modelName, modelPreset) => this.deps.announceModel(modelName, modelPreset),
  };

  /** Runs `work` now when nothing is pending for the chat (errors reach the caller), else after what is. */
  #inOrder(chatId: string, work: () => Promise<void> | undefined | void): void {
    const before = this.#pending.get(chatId);
    const running = before ? before.then(work) : work();
    if (!running) return;
    const tracked = running.catch((e: unknown) => this.deps.log.error("publishing agent output failed", { chat_id: chatId, error: e instanceof Error ? e.message : String(e) }));
    this.#pending.set(chatId, tracked);
    void tracked.then(() => {
      if (this.#pending.get(chatId) === tracked) this.#pending.delete(chatId);
    });
  }
}
