/**
 * GET /api/media/<sig>/<payload>: the signature is the only credential.
 * Bad signature 401, bad payload 400, expired 410, outside the root or missing
 * 404. Single byte ranges answer 206; anything else a range asks for is 416 (Content-Range
 * `bytes *∕size`, i.e. the size only). Types come from the allowlist (else octet-stream), never sniffed
 * by the browser; SVG only under a sandboxing CSP; caching never outlives the URL.
 */
import type { Handler } from "hono";
import { refusal } from "../http/refusal.ts";
import type { MediaLibrary } from "./library.ts";
import { servedType } from "./mime.ts";
import type { MediaSigner } from "./signing.ts";

const MEDIA_ERRORS = { 400: "Bad Request", 401: "Unauthorized", 410: "Gone" } as const;

const SVG_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";

type Range = { start: number; end: number } | "unsatisfiable" | undefined;

/** Parses `bytes=a-b`, `bytes=a-`, `bytes=-n` for a file of `size` bytes. */
export function parseRange(header: string | undefined, size: number): Range {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "") || size === 0) return "unsatisfiable";
  if (m[1] === "") {
    const suffix = Number(m[2]);
    return suffix === 0 ? "unsatisfiable" : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  return start >= size || start > end ? "unsatisfiable" : { start, end };
}

export function mediaRoute(signer: MediaSigner, library: MediaLibrary): Handler {
  return (c) => {
    const verified = signer.verify(c.req.param("sig") ?? "", c.req.param("payload") ?? "");
    if (!verified.ok) return refusal(verified.status, MEDIA_ERRORS[verified.status], verified.message);
    const path = library.resolveInside(verified.relPath);
    if (!path) return refusal(404, "Not Found", "no such media file");
    const file = Bun.file(path);
    const size = file.size;
    const type = servedType(path);
    const maxAge = Math.max(0, verified.expiresAt - Math.floor(Date.now() / 1000));
    const headers: Record<string, string> = {
      "content-type": type,
      "x-content-type-options": "nosniff",
      "accept-ranges": "bytes",
      "cache-control": `private, max-age=${maxAge}`,
    };
    if (type === "image/svg+xml") headers["content-security-policy"] = SVG_CSP;
    const range = parseRange(c.req.header("range"), size);
    if (range === "unsatisfiable") return new Response("range not satisfiable", { status: 416, headers: { ...headers, "content-range": `bytes */${size}` } });
    if (!range) return new Response(file, { headers });
    headers["content-range"] = `bytes ${range.start}-${range.end}/${size}`;
    return new Response(file.slice(range.start, range.end + 1), { status: 206, headers });
  };
}
