/**
 * Media an agent publishes: paths on `message.media` and local markdown images
 * in `message` / `stream_end` text. Relative paths are taken from the chat's
 * workspace; a file is published only from the media root or an allowed root
 * (config media_allowed_roots, plus the chat's workspace scope), otherwise it is
 * dropped with a logged warning. Clients only ever see signed URLs.
 */
import { isAbsolute, join } from "node:path";
import type { Logger } from "../log.ts";
import type { MediaLibrary, MediaRef } from "./library.ts";
import { rewriteLocalImages } from "./markdown.ts";

export class OutboundMedia {
  constructor(
    private readonly library: MediaLibrary,
    /** The roots a chat may publish from; the first is its workspace. */
    private readonly rootsFor: (chatId: string) => string[],
    private readonly maxBytes: number,
    private readonly log: Logger,
  ) {}

  async urls(chatId: string, paths: string[]): Promise<{ url: string; name: string }[]> {
    const out = [];
    for (const path of paths) {
      const ref = await this.#publish(chatId, path);
      if (ref) out.push({ url: this.library.url(ref), name: ref.name });
    }
    return out;
  }

  rewrite(chatId: string, text: string): Promise<string> {
    return rewriteLocalImages(text, async (path) => {
      const ref = await this.#publish(chatId, path);
      return ref && this.library.url(ref);
    });
  }

  async #publish(chatId: string, path: string): Promise<MediaRef | undefined> {
    const roots = this.rootsFor(chatId);
    const absolute = isAbsolute(path) ? path : join(roots[0] ?? this.library.root, path);
    const ref = await this.library.stage(chatId, absolute, roots, this.maxBytes).catch(() => undefined);
    if (!ref) {
      this.log.warn("agent media dropped: not a file inside an allowed root", { chat_id: chatId });
      return undefined;
    }
    return ref;
  }
}
