/**
 * GET /api/media/<sig>/<payload>: the signature is the only credential.
 * Bad signature 401, bad payload 400, expired 410, outside the root or missing
 * 404. Ranges are Bun's own handling of file bodies (206, suffix ranges, 416 with
 * `bytes *∕size`; malformed or multiple ranges get the whole file). Types come from the allowlist (else octet-stream), never sniffed
 * by the browser; SVG only under a sandboxing CSP; caching never outlives the URL.
 */
import type { Handler } from "hono";
import { refusal } from "../http/refusal.ts";
import type { MediaLibrary } from "./library.ts";
import { servedType } from "./mime.ts";
import type { MediaSigner } from "./signing.ts";

const MEDIA_ERRORS = { 400: "Bad Request", 401: "Unauthorized", 410: "Gone" } as const;

const SVG_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";

export function mediaRoute(signer: MediaSigner, library: MediaLibrary): Handler {
  return (c) => {
    const verified = signer.verify(c.req.param("sig") ?? "", c.req.param("payload") ?? "");
    if (!verified.ok) return refusal(verified.status, MEDIA_ERRORS[verified.status], verified.message);
    const path = library.resolveInside(verified.relPath);
    if (!path) return refusal(404, "Not Found", "no such media file");
    const file = Bun.file(path);
    const type = servedType(path);
    const maxAge = Math.max(0, verified.expiresAt - Math.floor(Date.now() / 1000));
    const headers: Record<string, string> = {
      "content-type": type,
      "x-content-type-options": "nosniff",
      "accept-ranges": "bytes",
      "cache-control": `private, max-age=${maxAge}`,
    };
    if (type === "image/svg+xml") headers["content-security-policy"] = SVG_CSP;
    // Bun answers Range itself for file bodies: 206 for one satisfiable range (suffix ranges too), 416 for an
    // unsatisfiable one, and the whole file for malformed or multiple ranges (RFC 9110 lets a server ignore them).
    return new Response(file, { headers });
  };
}
