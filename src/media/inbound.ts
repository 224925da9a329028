/**
 * Media a client sends with a message: inline data URLs (`media`) and earlier
 * uploads (`media_ids`). Everything is checked before anything is written (counts
 * over both, types, sizes, content); then the batch is written all or nothing
 * and the uploads are tied to the chat.
 */
import { IMAGE_REJECT, type ImageRejectReason } from "../protocol/errors.ts";
import { type DecodedMedia, decodeMediaBatch, type MediaLimits } from "./data-url.ts";
import type { MediaLibrary, MediaRef } from "./library.ts";
import { mediaType } from "./mime.ts";

export interface CheckedMedia {
  decoded: DecodedMedia[];
  uploads: MediaRef[];
}

export class InboundMedia {
  constructor(
    private readonly library: MediaLibrary,
    private readonly limits: MediaLimits,
  ) {}

  check(chatId: string, items: unknown[] = [], ids: string[] = []): { ok: true; media: CheckedMedia } | { ok: false; reason: ImageRejectReason } {
    const uploads = this.library.uploads(ids, chatId);
    if (!uploads) return { ok: false, reason: IMAGE_REJECT.unknownMedia };
    const count = (kind: string) => uploads.filter((u) => mediaType(u.mime)?.kind === kind).length;
    const limits = { ...this.limits, maxImages: this.limits.maxImages - count("image"), maxVideos: this.limits.maxVideos - count("video") };
    if (limits.maxImages < 0) return { ok: false, reason: IMAGE_REJECT.tooManyImages };
    if (limits.maxVideos < 0) return { ok: false, reason: IMAGE_REJECT.tooManyVideos };
    const decoded = decodeMediaBatch(items, limits);
    return decoded.ok ? { ok: true, media: { decoded: decoded.media, uploads } } : decoded;
  }

  /** Writes a checked batch into the chat (whose row must exist) and claims its uploads. */
  store(chatId: string, media: CheckedMedia): MediaRef[] {
    const saved = this.library.saveBatch(chatId, media.decoded);
    this.library.claim(media.uploads.map((u) => u.id), chatId);
    return [...media.uploads, ...saved];
  }
}
