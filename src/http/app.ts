/**
 * The HTTP surface (every request that is not a client WebSocket upgrade).
 * Request in, Response out: routes never touch sockets directly. The listener
 * passes who the peer is (auth/peer.ts) as the request env. Every refusal is
 * JSON `{error, reason}`; browser origins are checked before any credentialed
 * route; each route family has its own per-address rate limit.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { requireApiCredential } from "../auth/api-credential.ts";
import { type ReusableTokens, type SingleUseTokens, TokenNotRecordedError } from "../auth/issued-tokens.ts";
import type { TrustPolicy } from "../auth/peer.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { MediaLimits } from "../media/data-url.ts";
import type { MediaLibrary } from "../media/library.ts";
import { mediaRoute } from "../media/serve.ts";
import type { MediaSigner } from "../media/signing.ts";
import { uploadRoute } from "../media/upload.ts";
import { bootstrapRoute } from "./bootstrap.ts";
import { healthRoutes, type ReadinessCheck } from "./health.ts";
import { metricsRoute } from "./metrics.ts";
import { type ChatsDeps, chatsApp } from "./chats.ts";
import { RateLimiter, rateLimit } from "./rate-limit.ts";
import { refusal } from "./refusal.ts";
import { isSharedStoreError } from "../cluster/cluster.ts";
import { HTTP_INTERNAL, HTTP_INTERNAL_REASON, HTTP_SHARED_STORE_READ_REASON, HTTP_TOKENS_UNAVAILABLE, HTTP_TOKENS_UNAVAILABLE_REASON, STORAGE_ERROR } from "../protocol/errors.ts";
import { peerOf } from "./request-env.ts";
import { requestLog } from "./request-log.ts";
import { type SessionsDeps, sessionsApp } from "./sessions.ts";
import { staticSite } from "./static-site.ts";
import { tokenIssueRoute } from "./token-issue.ts";
import { webPage } from "../web/page.ts";

export interface HttpDeps {
  config: Config;
  trust: TrustPolicy;
  /** Single-use WebSocket tokens. */
  wsTokens: SingleUseTokens;
  /** Reusable API tokens handed out by bootstrap. */
  apiTokens: ReusableTokens;
  /** Bootstrap WebSocket tokens of local browsers, also accepted on the sessions and media routes. */
  browserTokens: ReusableTokens;
  sessions: SessionsDeps;
  chats: ChatsDeps;
  media: { signer: MediaSigner; library: MediaLibrary; limits: MediaLimits };
  modelName: string;
  /** The configured agents' names, the built-in echo among them. */
  agentNames: string[];
  readiness: Record<string, ReadinessCheck>;
  /** The gateway's scrape-time gauges (metrics/metrics.ts). */
  gauges: { render(): string };
  log: Logger;
}

/** Signed media GETs: the hot media path, not logged per request. */
const MEDIA_ROUTE = "/api/media/:sig/:payload";

/** A browser Origin that is neither the gateway's own nor allowed is refused before the route runs. */
function originGuard(trust: TrustPolicy): MiddlewareHandler {
  return async (c, next) => {
    const reason = trust.originRefusal(c.req.raw);
    if (reason !== undefined) return refusal(403, "Forbidden", reason);
    await next();
  };
}

export function createHttpApp(deps: HttpDeps): Hono {
  const { config, wsTokens, apiTokens, browserTokens, trust, log } = deps;
  const app = new Hono();
  const origin = originGuard(trust);
  const authLimit = rateLimit(new RateLimiter(config.rate_limit_auth_per_min), peerOf);
  const apiLimit = rateLimit(new RateLimiter(config.rate_limit_api_per_min), peerOf);
  const uploadLimit = rateLimit(new RateLimiter(config.rate_limit_upload_per_min), peerOf);
  const apiCredential = requireApiCredential(config, apiTokens);
  // A local browser's bootstrap token also opens the sessions and media routes (bootstrap_token_api_access).
  const browserCredential = requireApiCredential(config, apiTokens, browserTokens);
  const jsonBodyLimit = bodyLimit({
    maxSize: config.max_message_bytes,
    onError: () => refusal(413, "Payload Too Large", `request bodies on this route are limited to ${config.max_message_bytes} bytes`),
  });

  app.use(requestLog(log, [MEDIA_ROUTE]));
  app.route("/", healthRoutes(deps.readiness));
  app.get("/metrics", metricsRoute(config, trust, apiCredential, deps.gauges));
  if (config.token_issue_path) {
    app.on(["GET", "POST"], config.token_issue_path, origin, authLimit, tokenIssueRoute(config, wsTokens, trust));
  }
  app.get("/webui/bootstrap", origin, authLimit, bootstrapRoute({ config, trust, wsTokens, apiTokens, browserTokens, modelName: deps.modelName, agentNames: deps.agentNames }));

  // Hono's "/x/*" also matches "/x" itself: one registration per family, so each request counts once.
  app.use("/api/sessions/*", origin, apiLimit, browserCredential, jsonBodyLimit);
  app.use("/api/chats/*", origin, apiLimit, apiCredential, jsonBodyLimit);
  app.route("/api/sessions", sessionsApp(deps.sessions));
  app.route("/api/chats", chatsApp(deps.chats));
  app.post("/api/media", origin, uploadLimit, browserCredential, uploadRoute(deps.media.library, deps.media.limits));
  // The signature is the credential; <img> and <video> on any page may load it.
  app.get(MEDIA_ROUTE, mediaRoute(deps.media.signer, deps.media.library));

  // Clients detect HTML where they expected JSON, so misses are JSON too.
  app.all("/api/*", () => refusal(404, "API route not found", "no API route has this method and path"));
  app.on(["GET", "HEAD"], "*", config.webui_dir ? staticSite({ root: config.webui_dir, csp: config.webui_csp }) : webPage());
  app.notFound(() => refusal(404, "Not Found", "no such route"));
  app.onError((err, c) => {
    if (err instanceof TokenNotRecordedError) {
      log.error("token not issued", { path: c.req.path, error: err.message });
      return refusal(503, HTTP_TOKENS_UNAVAILABLE, HTTP_TOKENS_UNAVAILABLE_REASON);
    }
    if (isSharedStoreError(err)) {
      log.error("cluster store failed", { path: c.req.path, error: err.message });
      return refusal(503, STORAGE_ERROR, HTTP_SHARED_STORE_READ_REASON);
    }
    log.error("http handler failed", { path: c.req.path, error: err.message });
    return refusal(500, HTTP_INTERNAL, HTTP_INTERNAL_REASON);
  });
  return app;
}
