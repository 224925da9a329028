/**
 * Inbound `message.media` items: `{data_url: "data:<mime>;base64,<b64>", name?}`.
 * Base64 is strict (alphabet and padding); the size is checked from the encoded
 * length before anything is decoded, so a huge payload costs no memory; the
 * declared type must be accepted and must match the decoded bytes.
 */
import { IMAGE_REJECT, type ImageRejectReason } from "../protocol/errors.ts";
import { contentMatches, mediaType } from "./mime.ts";

/** Why a batch of data URLs is refused (every image_rejected reason but unknown_media). */
export type RejectReason = Exclude<ImageRejectReason, typeof IMAGE_REJECT.unknownMedia>;

export interface MediaLimits {
  maxImages: number;
  maxImageBytes: number;
  maxVideos: number;
  maxVideoBytes: number;
}

export interface DecodedMedia {
  mime: string;
  name: string;
  bytes: Buffer;
}

const PREFIX = /^data:([^;,]+);base64,/i;
const STRICT_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const declaredMime = (item: unknown) => {
  const url = (item as { data_url?: unknown } | null)?.data_url;
  return typeof url === "string" ? PREFIX.exec(url)?.[1]?.toLowerCase() : undefined;
};

export const maxBytesFor = (mime: string, limits: MediaLimits) => (mediaType(mime)?.kind === "video" ? limits.maxVideoBytes : limits.maxImageBytes);

function decodeOne(item: unknown, limits: MediaLimits): DecodedMedia | RejectReason {
  if (typeof item !== "object" || item === null || Array.isArray(item)) return IMAGE_REJECT.malformed;
  const { data_url: url, name } = item as { data_url?: unknown; name?: unknown };
  if (typeof url !== "string" || url === "") return IMAGE_REJECT.malformed;
  const match = PREFIX.exec(url);
  if (!match) return IMAGE_REJECT.decode;
  const mime = match[1]!.toLowerCase();
  const type = mediaType(mime);
  if (!type) return IMAGE_REJECT.mime;
  const b64 = url.slice(match[0].length);
  if (b64.length % 4 !== 0 || !STRICT_BASE64.test(b64)) return IMAGE_REJECT.decode;
  const padding = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  if ((b64.length / 4) * 3 - padding > maxBytesFor(mime, limits)) return IMAGE_REJECT.size;
  const bytes = Buffer.from(b64, "base64");
  if (!contentMatches(mime, bytes)) return IMAGE_REJECT.mime;
  const safeName = typeof name === "string" && name.trim() !== "" ? name.trim().slice(0, 200) : `attachment${type.ext}`;
  return { mime, name: safeName, bytes };
}

/** Decodes a whole batch or rejects it with the first reason (counts first, as nanobot does). */
export function decodeMediaBatch(items: unknown[], limits: MediaLimits): { ok: true; media: DecodedMedia[] } | { ok: false; reason: RejectReason } {
  const kinds = items.map((item) => mediaType(declaredMime(item) ?? "")?.kind);
  if (kinds.filter((k) => k === "image").length > limits.maxImages) return { ok: false, reason: IMAGE_REJECT.tooManyImages };
  if (kinds.filter((k) => k === "video").length > limits.maxVideos) return { ok: false, reason: IMAGE_REJECT.tooManyVideos };
  const media: DecodedMedia[] = [];
  for (const item of items) {
    const decoded = decodeOne(item, limits);
    if (typeof decoded === "string") return { ok: false, reason: decoded };
    media.push(decoded);
  }
  return { ok: true, media };
}
