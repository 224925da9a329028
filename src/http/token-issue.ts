/**
 * The token-issue route: whoever proves the issue secret (or, without one, the
 * static token) gets a single-use client token for one WebSocket handshake.
 * With neither configured only a peer with a local user's trust may ask.
 */
import type { Handler } from "hono";
import type { SingleUseTokens } from "../auth/issued-tokens.ts";
import type { TrustPolicy } from "../auth/peer.ts";
import { requestProvesSecret } from "../auth/secret.ts";
import type { Config } from "../config.ts";
import { metrics } from "../metrics/metrics.ts";
import { refusal } from "./refusal.ts";
import { peerOf } from "./request-env.ts";

export function tokenIssueRoute(config: Config, tokens: SingleUseTokens, trust: TrustPolicy): Handler {
  const secret = config.token_issue_secret || config.token;
  return async (c) => {
    if (secret && !requestProvesSecret(c.req.raw.headers, secret)) {
      metrics.authFailed("issue_secret");
      return refusal(401, "Unauthorized", "the issue secret is missing or wrong");
    }
    const notLocal = secret ? undefined : trust.localRefusal(c.req.raw, peerOf(c.env));
    if (notLocal !== undefined) return refusal(403, "Forbidden", `without a secret, tokens are issued to local peers only: ${notLocal}`);
    const token = await tokens.issue();
    if (!token) return refusal(429, "too many outstanding tokens", "at most max_outstanding_tokens live tokens");
    metrics.tokenIssued("token_issue");
    c.header("Cache-Control", "no-store");
    return c.json({ token, expires_in: config.token_ttl_s });
  };
}
