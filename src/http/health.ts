/**
 * Probes. GET /health: the process is up and serving HTTP (liveness). GET /ready:
 * every readiness check passes (readiness): 200 `{ready: true, checks}` or 503
 * with the failing checks' reasons. Both are open (they reveal no chat data) and
 * answer on every listener.
 */
import { Hono } from "hono";

/** A reason the gateway is not ready, or undefined when this part is fine. */
export type ReadinessCheck = () => string | undefined;

export function healthRoutes(checks: Record<string, ReadinessCheck>): Hono {
  const app = new Hono();
  app.get("/health", (c) => c.json({ ok: true }));
  app.get("/ready", (c) => {
    const results = Object.fromEntries(Object.entries(checks).map(([name, check]) => [name, check() ?? "ok"]));
    const ready = Object.values(results).every((r) => r === "ok");
    c.header("Cache-Control", "no-store");
    return c.json({ ready, checks: results }, ready ? 200 : 503);
  });
  return app;
}
