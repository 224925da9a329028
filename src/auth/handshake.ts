/**
 * Who may open a client WebSocket. Every refusal is an HTTP status before the
 * upgrade (never a close after accept), in nanobot's order:
 *   1. allow_from on the client's identity → 403. The identity is a valid JWT's
 *      `sub` when one is presented (a token for mallory cannot pass as alice),
 *      else the raw client_id;
 *   2. a credential: the static token, an issued single-use token, or (when a
 *      JWT secret is set) an HS256 JWT with `sub` and `exp` → else 401.
 * Without a static token and with websocket_requires_token off, a peer with a
 * local user's trust (see peer.ts) needs no credential; anyone else still does,
 * and is refused with 403 and the reason it is not local. A token presented
 * anyway is still consumed.
 */
import { verify } from "hono/jwt";
import type { Config } from "../config.ts";
import { metrics } from "../metrics/metrics.ts";
import type { SingleUseTokens } from "./issued-tokens.ts";
import { secretEquals } from "./secret.ts";

export const MAX_CLIENT_ID_LENGTH = 128;

export type HandshakeOutcome = { ok: true; identity?: string } | { ok: false; status: 401 | 403; error: string; reason: string };

type HandshakeConfig = Pick<Config, "allow_from" | "token" | "websocket_requires_token" | "jwt_secret">;

export function clientAllowed(clientId: string, allowFrom: string[]): boolean {
  return allowFrom.includes("*") || allowFrom.includes(clientId);
}

/** The subject of an HS256 JWT signed with `secret` that names a subject and an expiry (checked by hono/jwt). */
export async function jwtSubject(token: string, secret: string): Promise<string | undefined> {
  if (secret === "" || token === "") return undefined;
  try {
    const claims = await verify(token, secret, "HS256");
    return typeof claims.sub === "string" && claims.sub !== "" && typeof claims.exp === "number" ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}

/** The static token or an issued one (consumed here, valid or not). */
async function tokenValid(token: string, config: HandshakeConfig, issued: SingleUseTokens): Promise<boolean> {
  if (token === "") return false;
  if (config.token && secretEquals(token, config.token)) return true;
  return issued.consume(token);
}

/** `localRefusal`: why the peer lacks a local user's trust, undefined if it has it. */
export async function authorizeHandshake(url: URL, config: HandshakeConfig, issued: SingleUseTokens, localRefusal: string | undefined): Promise<HandshakeOutcome> {
  const token = url.searchParams.get("token") ?? "";
  const subject = await jwtSubject(token, config.jwt_secret);
  const identity = subject ?? (url.searchParams.get("client_id") ?? "").trim().slice(0, MAX_CLIENT_ID_LENGTH);
  if (!clientAllowed(identity, config.allow_from)) {
    metrics.authFailed("not_allowed");
    return { ok: false, status: 403, error: "Forbidden", reason: "client_id is not in allow_from" };
  }
  const valid = subject !== undefined || (await tokenValid(token, config, issued));
  const credentialRequired = config.token !== "" || config.websocket_requires_token;
  if (valid || (!credentialRequired && localRefusal === undefined)) return { ok: true, ...(subject !== undefined && { identity: subject }) };
  metrics.authFailed(!credentialRequired ? "not_local" : token === "" ? "missing_token" : "invalid_token");
  if (!credentialRequired) return { ok: false, status: 403, error: "Forbidden", reason: `a connection without a token must be local: ${localRefusal}` };
  return { ok: false, status: 401, error: "Unauthorized", reason: token === "" ? "a token is required" : "the token is invalid, expired or already used" };
}
