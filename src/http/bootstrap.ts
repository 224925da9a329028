/**
 * GET /webui/bootstrap (reference §4.2): what a browser UI needs to connect —
 * a single-use WebSocket token, a reusable API token, and where to connect.
 * With a secret configured it must be proven, even from loopback (401); without
 * one only local peers (loopback TCP, or the 0600 unix socket) may ask (403).
 */
import type { Server } from "bun";
import type { Context, Handler } from "hono";
import type { IssuedTokens } from "../auth/issued-tokens.ts";
import { requestProvesSecret } from "../auth/secret.ts";
import { peerIsLocal } from "../clients/workspace-scope.ts";
import { type Config, connectableHost } from "../config.ts";

export interface BootstrapDeps {
  config: Config;
  wsTokens: IssuedTokens;
  apiTokens: IssuedTokens;
  /** Where a local browser's WebSocket token is admitted for REST too (bootstrap_token_api_access). */
  browserTokens: IssuedTokens;
  modelName: string;
}

const SAFE_HOST = [/^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/, /^[A-Za-z0-9.-]+(:\d{1,5})?$/];

/** ws_url: the Host the browser used when it is well-formed, else the listener that answered. */
function wsUrl(c: Context, config: Config): string {
  const forwarded = (c.req.header("x-forwarded-proto") ?? "").split(",")[0]!.trim().toLowerCase();
  const scheme = forwarded === "https" || forwarded === "wss" || config.ssl_certfile ? "wss" : "ws";
  const hostHeader = c.req.header("host") ?? "";
  if (SAFE_HOST.some((re) => re.test(hostHeader))) return `${scheme}://${hostHeader}${config.path}`;
  const host = connectableHost(config);
  const port = (c.env as Server<unknown> | undefined)?.port ?? config.port;
  return `${scheme}://${host}:${port}${config.path}`;
}

function peerOf(c: Context): { remote: string; viaUnixSocket: boolean } {
  const address = (c.env as Server<unknown> | undefined)?.requestIP(c.req.raw)?.address;
  return address === undefined ? { remote: "", viaUnixSocket: true } : { remote: address, viaUnixSocket: false };
}

export function bootstrapRoute({ config, wsTokens, apiTokens, browserTokens, modelName }: BootstrapDeps): Handler {
  const secret = config.token_issue_secret || config.token;
  return (c) => {
    if (secret && !requestProvesSecret(c.req.raw.headers, secret)) return c.text("Unauthorized", 401);
    const peer = peerOf(c);
    if (!secret && !peerIsLocal(peer.remote, peer.viaUnixSocket)) return c.text("bootstrap is localhost-only", 403);
    const token = wsTokens.issue();
    const apiToken = token && apiTokens.issue();
    if (!token || !apiToken) return c.json({ error: "too many outstanding tokens" }, 429);
    // nanobot's WebUI sends `token` (not api_token) to the sessions API: honoured for a browser on this machine only.
    if (config.bootstrap_token_api_access && peerIsLocal(peer.remote, peer.viaUnixSocket)) browserTokens.admit(token);
    c.header("Cache-Control", "no-store");
    return c.json({
      token,
      api_token: apiToken,
      ws_path: config.path,
      ws_url: wsUrl(c, config),
      expires_in: config.token_ttl_s,
      model_name: modelName || null,
      runtime_surface: "browser",
      runtime_capabilities: { can_restart_engine: false, can_pick_folder: false, can_open_logs: false, can_export_diagnostics: false },
    });
  };
}
