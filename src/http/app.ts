/**
 * The HTTP surface (every request that is not a client WebSocket upgrade).
 * Request in, Response out: the Hono app never touches sockets or the hub.
 */
import { Hono } from "hono";
import type { Config } from "../config.ts";
import type { IssuedTokens } from "../auth/issued-tokens.ts";
import type { Logger } from "../log.ts";
import { tokenIssueRoute } from "./token-issue.ts";

export interface HttpDeps {
  config: Config;
  tokens: IssuedTokens;
  log: Logger;
}

export function createHttpApp({ config, tokens, log }: HttpDeps): Hono {
  const app = new Hono();
  app.get("/health", (c) => c.json({ ok: true }));
  if (config.token_issue_path) {
    app.on(["GET", "POST"], config.token_issue_path, tokenIssueRoute(config, tokens));
  }
  // Clients detect HTML where they expected JSON, so API misses are always JSON.
  app.all("/api/*", (c) => c.json({ error: "API route not found" }, 404));
  app.notFound((c) => c.text("Not Found", 404));
  app.onError((err, c) => {
    log.error("http handler failed", { path: c.req.path, error: err.message });
    return c.text("Internal Server Error", 500);
  });
  return app;
}
