/**
 * GET /webui/bootstrap (reference §4.2): what a browser UI needs to connect —
 * a single-use WebSocket token, a reusable API token, and where to connect.
 * With a secret configured it must be proven, even from loopback (401); without
 * one only a peer with a local user's trust (auth/peer.ts: loopback or the 0600
 * unix socket, an allowed Host, no untrusted proxy) may ask (403).
 */
import type { Context, Handler } from "hono";
import type { ReusableTokens, SingleUseTokens } from "../auth/issued-tokens.ts";
import { hostName, type TrustPolicy } from "../auth/peer.ts";
import { requestProvesSecret } from "../auth/secret.ts";
import type { Config } from "../config.ts";
import { connectableHost } from "../config-rules.ts";
import { metrics } from "../metrics/metrics.ts";
import { refusal } from "./refusal.ts";
import type { RequestEnv } from "./request-env.ts";

export interface BootstrapDeps {
  config: Config;
  trust: TrustPolicy;
  wsTokens: SingleUseTokens;
  apiTokens: ReusableTokens;
  /** Where a local browser's WebSocket token is admitted for REST too (bootstrap_token_api_access). */
  browserTokens: ReusableTokens;
  modelName: string;
  /** Every agent a client may name in new_chat (additive to nanobot's answer, as is default_agent). */
  agentNames: string[];
}

/** ws_url: the Host the browser used when it is well-formed, else the listener that answered. */
function wsUrl(c: Context, config: Config): string {
  const env = c.env as RequestEnv;
  const scheme = env.peer.https ? "wss" : "ws";
  const hostHeader = c.req.header("host") ?? "";
  if (hostName(hostHeader) !== undefined) return `${scheme}://${hostHeader}${config.path}`;
  return `${scheme}://${connectableHost(config)}:${env.port ?? config.port}${config.path}`;
}

export function bootstrapRoute({ config, trust, wsTokens, apiTokens, browserTokens, modelName, agentNames }: BootstrapDeps): Handler {
  const secret = config.token_issue_secret || config.token;
  return async (c) => {
    if (secret && !requestProvesSecret(c.req.raw.headers, secret)) {
      metrics.authFailed("issue_secret");
      return refusal(401, "Unauthorized", "the bootstrap secret is missing or wrong");
    }
    const notLocal = trust.localRefusal(c.req.raw, (c.env as RequestEnv).peer);
    if (!secret && notLocal !== undefined) return refusal(403, "Forbidden", `bootstrap is localhost-only: ${notLocal}`);
    const token = await wsTokens.issue();
    const apiToken = token && (await apiTokens.issue());
    if (!token || !apiToken) return refusal(429, "too many outstanding tokens", "at most max_outstanding_tokens live tokens");
    // nanobot's WebUI sends `token` (not api_token) to the sessions API: honoured for a browser on this machine only.
    if (config.bootstrap_token_api_access && notLocal === undefined) await browserTokens.admit(token);
    metrics.tokenIssued("bootstrap");
    c.header("Cache-Control", "no-store");
    return c.json({
      token,
      api_token: apiToken,
      ws_path: config.path,
      ws_url: wsUrl(c, config),
      expires_in: config.token_ttl_s,
      model_name: modelName || null,
      agents: agentNames,
      default_agent: config.agent,
      runtime_surface: "browser",
      runtime_capabilities: { can_restart_engine: false, can_pick_folder: false, can_open_logs: false, can_export_diagnostics: false },
    });
  };
}
