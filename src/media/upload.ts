/**
 * POST /api/media (API credential): a raw body with its Content-Type, or
 * multipart/form-data whose first file part is taken. The body is streamed to a
 * temp file and never held whole; the size limit of the declared type is
 * enforced while streaming (and up front from Content-Length), the content must
 * match the declared type, and nothing is left on disk when anything fails.
 * Answers {media_id, url, mime, size}; a message then references it by media_ids.
 */
import { unlink } from "node:fs/promises";
import type { Context } from "hono";
import { type MediaLimits, maxBytesFor } from "./data-url.ts";
import type { MediaLibrary } from "./library.ts";
import { contentMatches, MAGIC_BYTES, mediaType } from "./mime.ts";
import { refusal } from "../http/refusal.ts";
import { metrics } from "../metrics/metrics.ts";
import { type FilePart, firstFilePart } from "./multipart.ts";

class UploadError extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
  ) {
    super(message);
  }
}

const mimeOf = (contentType: string | undefined) => (contentType ?? "").split(";")[0]!.trim().toLowerCase();

async function openPart(c: Context): Promise<FilePart> {
  const contentType = c.req.header("content-type") ?? "";
  const body = c.req.raw.body;
  if (!body) throw new UploadError(400, "empty body");
  if (mimeOf(contentType) !== "multipart/form-data") {
    return { mime: mimeOf(contentType), name: c.req.query("name") ?? "", data: body, release: () => void body.cancel().catch(() => {}) };
  }
  let part: FilePart | undefined;
  try {
    part = await firstFilePart(body, contentType);
  } catch {
    throw new UploadError(400, "multipart without boundary");
  }
  if (!part) throw new UploadError(400, "no file part");
  return part;
}

/** Streams the part to `temp`, enforcing the limit; returns size and sha256. */
async function streamToFile(part: FilePart, temp: string, maxBytes: number): Promise<{ size: number; sha256: string; head: Uint8Array }> {
  const sink = Bun.file(temp).writer();
  const hasher = new Bun.CryptoHasher("sha256");
  let size = 0;
  let head = new Uint8Array(0);
  try {
    for await (const chunk of part.data) {
      size += chunk.length;
      if (size > maxBytes) throw new UploadError(413, "size");
      if (head.length < MAGIC_BYTES) head = new Uint8Array([...head, ...chunk.subarray(0, MAGIC_BYTES - head.length)]);
      hasher.update(chunk);
      sink.write(chunk);
    }
  } catch (e) {
    // The body broke off or the multipart framing is bad: the client's fault, not ours.
    throw e instanceof UploadError ? e : new UploadError(400, "malformed body");
  } finally {
    await sink.end();
  }
  return { size, sha256: hasher.digest("hex"), head };
}

export function uploadRoute(library: MediaLibrary, limits: MediaLimits) {
  return async (c: Context) => {
    const temp = library.tempPath();
    let part: FilePart | undefined;
    try {
      const declaredLength = Number(c.req.header("content-length") ?? 0);
      part = await openPart(c);
      const type = mediaType(part.mime);
      if (!type) throw new UploadError(415, "mime");
      const maxBytes = maxBytesFor(part.mime, limits);
      if (mimeOf(c.req.header("content-type")) !== "multipart/form-data" && declaredLength > maxBytes) throw new UploadError(413, "size");
      const { size, sha256, head } = await streamToFile(part, temp, maxBytes);
      if (size === 0) throw new UploadError(400, "empty body");
      if (!contentMatches(part.mime, head)) throw new UploadError(415, "mime");
      const name = part.name.trim().slice(0, 200) || `upload${type.ext}`;
      const ref = await library.adoptUpload(temp, part.mime, name, size, sha256);
      metrics.uploaded(size);
      return c.json({ media_id: ref.id, url: library.url(ref), mime: ref.mime, size: ref.size });
    } catch (e) {
      part?.release();
      await unlink(temp).catch(() => {});
      if (e instanceof UploadError) {
        metrics.uploadRefused(e.status);
        return refusal(e.status, "image_rejected", e.message);
      }
      throw e;
    }
  };
}
