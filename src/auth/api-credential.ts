/**
 * Who may call /api/*: a live API token (from bootstrap), the static token, or a
 * JWT when a JWT secret is set; presented as `Authorization: Bearer <t>` or
 * `?token=<t>` (nanobot's two forms). Anything else is 401 before the route runs.
 */
import type { MiddlewareHandler } from "hono";
import type { Config } from "../config.ts";
import { refusal } from "../http/refusal.ts";
import { metrics } from "../metrics/metrics.ts";
import { jwtSubject } from "./handshake.ts";
import type { ReusableTokens } from "./issued-tokens.ts";
import { presentedToken, secretEquals } from "./secret.ts";

/**
 * `extraTokens`: further live tokens accepted on this route group (bootstrap
 * tokens of a local browser, on the sessions and media routes only).
 */
export function requireApiCredential(config: Pick<Config, "token" | "jwt_secret">, apiTokens: ReusableTokens, extraTokens?: ReusableTokens): MiddlewareHandler {
  return async (c, next) => {
    const token = presentedToken(c.req.raw, new URL(c.req.url));
    // The credentials checked here first (static token, JWT), the issued ones last: in a cluster those ask Redis.
    const ok =
      token !== "" &&
      ((config.token !== "" && secretEquals(token, config.token)) ||
        (await jwtSubject(token, config.jwt_secret)) !== undefined ||
        (await apiTokens.isLive(token)) ||
        (extraTokens !== undefined && (await extraTokens.isLive(token))));
    if (!ok) {
      metrics.authFailed(token === "" ? "api_missing" : "api_invalid");
      return refusal(401, "Unauthorized", token === "" ? "an API credential is required (Bearer or ?token=)" : "the API credential is invalid or expired");
    }
    await next();
  };
}
