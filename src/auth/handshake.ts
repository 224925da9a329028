/**
 * Who may open a client WebSocket. Every refusal is an HTTP status before the
 * upgrade (never a close after accept), in nanobot's order:
 *   1. allow_from on the raw client_id → 403;
 *   2. a credential: the static token, an issued single-use token, or (when a
 *      JWT secret is set) an HS256 JWT with `sub` and `exp` → else 401.
 * With neither a static token nor websocket_requires_token, anyone may connect;
 * a token presented anyway is still consumed.
 */
import { verify } from "hono/jwt";
import type { Config } from "../config.ts";
import type { IssuedTokens } from "./issued-tokens.ts";
import { secretEquals } from "./secret.ts";

export const MAX_CLIENT_ID_LENGTH = 128;

export type HandshakeOutcome = { ok: true } | { ok: false; status: 401 | 403; body: string };

type HandshakeConfig = Pick<Config, "allow_from" | "token" | "websocket_requires_token" | "jwt_secret">;

export function clientAllowed(clientId: string, allowFrom: string[]): boolean {
  return allowFrom.includes("*") || allowFrom.includes(clientId);
}

/** An HS256 JWT signed with `secret` that names a subject and an expiry (checked by hono/jwt). */
export async function jwtValid(token: string, secret: string): Promise<boolean> {
  try {
    const claims = await verify(token, secret, "HS256");
    return typeof claims.sub === "string" && claims.sub !== "" && typeof claims.exp === "number";
  } catch {
    return false;
  }
}

async function credentialValid(token: string, config: HandshakeConfig, issued: IssuedTokens): Promise<boolean> {
  if (token === "") return false;
  if (config.token && secretEquals(token, config.token)) return true;
  if (issued.consume(token)) return true;
  return config.jwt_secret !== "" && (await jwtValid(token, config.jwt_secret));
}

export async function authorizeHandshake(url: URL, config: HandshakeConfig, issued: IssuedTokens): Promise<HandshakeOutcome> {
  const rawClientId = (url.searchParams.get("client_id") ?? "").slice(0, MAX_CLIENT_ID_LENGTH);
  if (!clientAllowed(rawClientId, config.allow_from)) return { ok: false, status: 403, body: "Forbidden" };
  const token = url.searchParams.get("token") ?? "";
  const credentialRequired = config.token !== "" || config.websocket_requires_token;
  if (!credentialRequired) {
    if (token) issued.consume(token);
    return { ok: true };
  }
  return (await credentialValid(token, config, issued)) ? { ok: true } : { ok: false, status: 401, body: "Unauthorized" };
}
