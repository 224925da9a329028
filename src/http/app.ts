/**
 * The HTTP surface (every request that is not a client WebSocket upgrade).
 * Request in, Response out: routes never touch sockets directly.
 */
import { Hono } from "hono";
import { requireApiCredential } from "../auth/api-credential.ts";
import type { IssuedTokens } from "../auth/issued-tokens.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { MediaLimits } from "../media/data-url.ts";
import type { MediaLibrary } from "../media/library.ts";
import { mediaRoute } from "../media/serve.ts";
import type { MediaSigner } from "../media/signing.ts";
import { uploadRoute } from "../media/upload.ts";
import { bootstrapRoute } from "./bootstrap.ts";
import { healthRoutes, type ReadinessCheck } from "./health.ts";
import { type ChatsDeps, chatsApp } from "./chats.ts";
import { requestLog } from "./request-log.ts";
import { type SessionsDeps, sessionsApp } from "./sessions.ts";
import { tokenIssueRoute } from "./token-issue.ts";

export interface HttpDeps {
  config: Config;
  /** Single-use WebSocket tokens. */
  wsTokens: IssuedTokens;
  /** Reusable API tokens handed out by bootstrap. */
  apiTokens: IssuedTokens;
  sessions: SessionsDeps;
  chats: ChatsDeps;
  media: { signer: MediaSigner; library: MediaLibrary; limits: MediaLimits };
  modelName: string;
  readiness: Record<string, ReadinessCheck>;
  log: Logger;
}

/** Signed media GETs: the hot media path, not logged per request. */
const MEDIA_ROUTE = "/api/media/:sig/:payload";

export function createHttpApp(deps: HttpDeps): Hono {
  const { config, wsTokens, apiTokens, log } = deps;
  const app = new Hono();
  app.use(requestLog(log, [MEDIA_ROUTE]));
  app.route("/", healthRoutes(deps.readiness));
  if (config.token_issue_path) {
    app.on(["GET", "POST"], config.token_issue_path, tokenIssueRoute(config, wsTokens));
  }
  app.get("/webui/bootstrap", bootstrapRoute({ config, wsTokens, apiTokens, modelName: deps.modelName }));

  const apiCredential = requireApiCredential(config, apiTokens);
  app.use("/api/sessions", apiCredential);
  app.use("/api/sessions/*", apiCredential);
  app.use("/api/chats/*", apiCredential);
  app.route("/api/sessions", sessionsApp(deps.sessions));
  app.route("/api/chats", chatsApp(deps.chats));
  app.post("/api/media", apiCredential, uploadRoute(deps.media.library, deps.media.limits));
  app.get(MEDIA_ROUTE, mediaRoute(deps.media.signer, deps.media.library));

  // Clients detect HTML where they expected JSON, so API misses are always JSON.
  app.all("/api/*", (c) => c.json({ error: "API route not found" }, 404));
  app.notFound((c) => c.text("Not Found", 404));
  app.onError((err, c) => {
    log.error("http handler failed", { path: c.req.path, error: err.message });
    return c.text("Internal Server Error", 500);
  });
  return app;
}
