/**
 * One log line per HTTP request: method, route pattern (never the raw URL, whose
 * path or query may carry a token or signed media payload), status and ms.
 * Signed media GETs are the hot path (a page of images is many requests) and
 * are not logged; probes (/health, /ready) log at debug so a scraper every few
 * seconds does not drown the log.
 */
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { Logger } from "../log.ts";

const PROBES = new Set(["/health", "/ready"]);

export function requestLog(log: Logger, unloggedRoutes: string[]): MiddlewareHandler {
  const quiet = new Set(unloggedRoutes);
  return async (c, next) => {
    const started = performance.now();
    await next();
    const route = routePath(c);
    if (quiet.has(route)) return;
    const fields = { method: c.req.method, route, status: c.res.status, ms: Math.round((performance.now() - started) * 10) / 10 };
    (PROBES.has(route) ? log.debug : log.info)("http request", fields);
  };
}
