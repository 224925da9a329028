/**
 * The token-issue route: whoever proves the issue secret (or, without one, the
 * static token) gets a single-use client token for one WebSocket handshake.
 */
import type { Handler } from "hono";
import type { Config } from "../config.ts";
import type { IssuedTokens } from "../auth/issued-tokens.ts";
import { requestProvesSecret } from "../auth/secret.ts";

export function tokenIssueRoute(config: Config, tokens: IssuedTokens): Handler {
  const secret = config.token_issue_secret || config.token;
  return (c) => {
    if (!requestProvesSecret(c.req.raw.headers, secret)) return c.text("Unauthorized", 401);
    const token = tokens.issue();
    if (!token) return c.json({ error: "too many outstanding tokens" }, 429);
    c.header("Cache-Control", "no-store");
    return c.json({ token, expires_in: config.token_ttl_s });
  };
}
