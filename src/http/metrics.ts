/**
 * GET /metrics: the Prometheus scrape (series in metrics/metrics.ts). Who may
 * scrape follows `metrics_enabled`: `auto` serves it openly on a loopback TCP
 * bind and on the unix socket and not at all on any other bind; `on` serves it
 * everywhere, behind the API credential on a non-loopback bind; `off` never.
 * Not served is a plain 404, as if the route did not exist. "Openly" still
 * means to a local peer (auth/peer.ts: allowed Host, no untrusted forwarded
 * headers): a request relayed by a proxy in front of a loopback bind, or a
 * rebound DNS name, needs the API credential.
 */
import type { Handler, MiddlewareHandler } from "hono";
import { isLoopback } from "../auth/address.ts";
import type { TrustPolicy } from "../auth/peer.ts";
import type { Config } from "../config.ts";
import { EXPOSITION_CONTENT_TYPE } from "../metrics/exposition.ts";
import { registry } from "../metrics/metrics.ts";
import { refusal } from "./refusal.ts";
import { peerOf, type RequestEnv } from "./request-env.ts";

export type MetricsAccess = "open" | "credential" | "off";

/** How a request that arrived on this transport may read /metrics. */
export function metricsAccess(config: Pick<Config, "metrics_enabled" | "host">, transport: "tcp" | "unix"): MetricsAccess {
  if (config.metrics_enabled === "off") return "off";
  if (transport === "unix" || isLoopback(config.host)) return "open";
  return config.metrics_enabled === "on" ? "credential" : "off";
}

/** The route: 404 when not served here, the API credential when required (or the peer is not local), else the exposition text. */
export function metricsRoute(config: Config, trust: TrustPolicy, apiCredential: MiddlewareHandler, gauges: { render(): string }): Handler {
  const scrape = () => new Response(registry.render() + gauges.render(), { headers: { "Content-Type": EXPOSITION_CONTENT_TYPE, "Cache-Control": "no-store" } });
  return async (c) => {
    const access = metricsAccess(config, (c.env as RequestEnv).port === undefined ? "unix" : "tcp");
    if (access === "off") return refusal(404, "Not Found", "no such route");
    if (access === "open" && trust.localRefusal(c.req.raw, peerOf(c.env)) === undefined) return scrape();
    let allowed = false;
    const refused = await apiCredential(c, async () => {
      allowed = true;
    });
    return allowed ? scrape() : (refused ?? refusal(401, "Unauthorized", "an API credential is required"));
  };
}
