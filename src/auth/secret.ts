/**
 * Timing-safe secret comparison. Both sides are hashed first so the compare
 * runs over equal-length digests: neither the content nor the length of the
 * configured secret leaks through timing, and non-ASCII input cannot throw.
 */
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

export function secretEquals(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** The credential a request presents: `Authorization: Bearer <t>`, else `?token=<t>` ("" if neither). */
export function presentedToken(req: Request, url: URL): string {
  const authorization = req.headers.get("authorization") ?? "";
  if (/^bearer /i.test(authorization)) return authorization.slice(7).trim();
  return url.searchParams.get("token") ?? "";
}

/**
 * Does a request prove the route secret? An empty secret guards nothing.
 * A Bearer Authorization header is decisive; otherwise X-Agentgate-Auth, or
 * nanobot's X-Nanobot-Auth, carries the secret.
 */
export function requestProvesSecret(headers: Headers, secret: string): boolean {
  if (secret === "") return true;
  const authorization = headers.get("authorization") ?? "";
  if (/^bearer /i.test(authorization)) return secretEquals(authorization.slice(7).trim(), secret);
  const header = headers.get("x-agentgate-auth") ?? headers.get("x-nanobot-auth");
  return header !== null && secretEquals(header.trim(), secret);
}
