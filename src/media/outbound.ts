/**
 * Media an agent publishes: paths on `message.media` and local markdown images
 * in its text (whole or streamed). Relative paths are taken from the chat's
 * workspace; a file is published only from the media root or an allowed root
 * (config media_allowed_roots, plus the chat's workspace scope). A path that may
 * not be published is dropped (an image becomes its alt text) with a logged
 * warning. Clients only ever see signed URLs.
 */
import { isAbsolute, join } from "node:path";
import type { Logger } from "../log.ts";
import type { MediaLibrary, MediaRef } from "./library.ts";
import { type ImageUrlFor, localMediaPath, type Piece, renderPieces, rewriteImages, splitImages } from "./markdown.ts";

/** Local image target → its signed URL (or undefined), so one path gets one URL within a segment. */
export type ImageUrlCache = Map<string, Promise<string | undefined>>;

export interface OutboundLimits {
  /** Largest file an agent may publish. */
  maxBytes: number;
  /** Longest streamed tail held back while it may still become a markdown image. */
  holdChars: number;
}

export class OutboundMedia {
  constructor(
    private readonly library: MediaLibrary,
    /** The roots a chat may publish from; the first is its workspace. */
    private readonly rootsFor: (chatId: string) => string[],
    private readonly limits: OutboundLimits,
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

  /** Whole text with every image published or replaced by its alt text. */
  rewrite(chatId: string, text: string, cache: ImageUrlCache = new Map()): Promise<string> {
    return rewriteImages(text, this.limits.holdChars, this.#urlFor(chatId, cache));
  }

  /** Streamed text: complete images and plain runs, and the tail held back (none when `final`; see markdown.ts). */
  split(text: string, final = false): { pieces: Piece[]; held: string } {
    return splitImages(text, this.limits.holdChars, final);
  }

  render(chatId: string, pieces: Piece[], cache: ImageUrlCache): Promise<string> {
    return renderPieces(pieces, this.#urlFor(chatId, cache));
  }

  #urlFor(chatId: string, cache: ImageUrlCache): ImageUrlFor {
    return (target) => {
      let url = cache.get(target);
      if (!url) {
        url = this.#imageUrl(chatId, target);
        cache.set(target, url);
      }
      return url;
    };
  }

  async #imageUrl(chatId: string, target: string): Promise<string | undefined> {
    const path = localMediaPath(target);
    if (path === undefined) {
      this.log.warn("agent image replaced by its alt text: not a media file", { chat_id: chatId });
      return undefined;
    }
    const ref = await this.#publish(chatId, path);
    return ref && this.library.url(ref);
  }

  async #publish(chatId: string, path: string): Promise<MediaRef | undefined> {
    const roots = this.rootsFor(chatId);
    const absolute = isAbsolute(path) ? path : join(roots[0] ?? this.library.root, path);
    const ref = await this.library.stage(chatId, absolute, roots, this.limits.maxBytes).catch(() => undefined);
    if (!ref) {
      this.log.warn("agent media dropped: not a file inside an allowed root", { chat_id: chatId });
      return undefined;
    }
    return ref;
  }
}
