/**
 * Probes (issue #16): /health says the process serves HTTP; /ready checks the
 * store and its migrations, the listeners and every configured agent, and
 * names what is not ready with a 503. While the gateway starts, its listeners
 * are already bound: /health answers, every other request waits for it.
 */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../src/config.ts";
import { bindListeners, type BoundListeners, type ConnectionHandlers } from "../src/listen.ts";
import { onCleanup, startTestGateway, type TestGateway, TRANSPORTS, tempDir } from "./helpers.ts";

const ready = async (gw: TestGateway) => {
  const res = await gw.http("unix", "/ready");
  return { status: res.status, body: (await res.json()) as { ready: boolean; checks: Record<string, string> } };
};

test("/health and /ready answer 200 on every listener when all is well", async () => {
  const gw = await startTestGateway();
  for (const transport of TRANSPORTS) {
    expect(await (await gw.http(transport, "/health")).json()).toEqual({ ok: true });
    const res = await gw.http(transport, "/ready");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ready: true, checks: { store: "ok", migrations: "ok", listeners: "ok", agents: "ok" } });
  }
});

test("/ready is 503 until a configured ws agent connects, then 200", async () => {
  const gw = await startTestGateway({ agents: { remote: { type: "ws" } }, agent_token: "agent-secret" });
  const before = await ready(gw);
  expect(before.status).toBe(503);
  expect(before.body).toMatchObject({ ready: false, checks: { agents: "agent remote (ws) is not connected", store: "ok" } });
  const ws = new WebSocket(`ws+unix://${join(gw.dir, "gw.sock")}:/agent?token=agent-secret`);
  onCleanup(() => ws.close());
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", reject);
  });
  ws.send(JSON.stringify({ type: "hello", agent: "remote", protocol: 1 }));
  for (let i = 0; i < 200 && (await ready(gw)).status !== 200; i++) await Bun.sleep(10);
  expect((await ready(gw)).body).toMatchObject({ ready: true, checks: { agents: "ok" } });
});

test("/ready names a stdio agent whose program is no longer executable", async () => {
  const dir = tempDir();
  const program = join(dir, "agent.sh");
  writeFileSync(program, "#!/bin/sh\nexec cat > /dev/null\n", { mode: 0o755 });
  const gw = await startTestGateway({ agents: { helper: { type: "stdio", command: [program] } } });
  expect((await ready(gw)).status).toBe(200);
  // Not removed: the running shell may still be opening its script, and a restart must not find it gone.
  chmodSync(program, 0o644);
  const { status, body } = await ready(gw);
  expect(status).toBe(503);
  expect(body.checks.agents).toBe(`agent helper (stdio): ${program} does not exist or is not executable`);
});

test("/ready is 503 when the database lacks applied migrations", async () => {
  const gw = await startTestGateway();
  const db = new Database(join(gw.config.data_dir, "agentgate.db"));
  db.exec("DELETE FROM __drizzle_migrations");
  db.close();
  const { status, body } = await ready(gw);
  expect(status).toBe(503);
  expect(body.checks.migrations).toMatch(/^0 of \d+ migrations applied$/);
});

/** Bounded poll until `count` requests wait on the bound listeners (throws past the deadline). */
async function untilWaiting(bound: BoundListeners, count: number): Promise<void> {
  for (let waited = 0; bound.waiting !== count; waited += 5) {
    if (waited > 5000) throw new Error(`${bound.waiting} requests waiting, expected ${count}`);
    await Bun.sleep(5);
  }
}

describe("during start-up (listeners bound before the gateway is built)", () => {
  const bind = async (limits: { startup_waiting_max?: number; startup_wait_ms?: number } = {}) => {
    const dir = tempDir();
    const { config } = resolveConfig({ port: 0, data_dir: join(dir, "data"), unix_socket_path: join(dir, "gw.sock"), ...limits });
    const bound = await bindListeners(config);
    onCleanup(() => bound.abort());
    const port = bound.listeners.find((l) => l.transport === "tcp")!.server.port;
    return { bound, socket: config.unix_socket_path, url: (path: string) => `http://127.0.0.1:${port}${path}` };
  };
  const answering = (status: number): ConnectionHandlers => {
    const fetch = () => new Response("from the gateway", { status });
    const ignore = () => {};
    return { fetch: { tcp: fetch, unix: fetch }, socket: { open: ignore, message: ignore, drain: ignore, close: ignore } };
  };

  test("/health answers at once; other requests wait for the gateway's handlers and are answered by them", async () => {
    const { bound, socket, url } = await bind();
    expect(await (await fetch(url("/health"))).json()).toEqual({ ok: true });
    expect((await fetch("http://localhost/health", { unix: socket })).status).toBe(200);
    let answered = false;
    const waiting = fetch(url("/ready")).then((res) => {
      answered = true;
      return res;
    });
    // The request must have reached the listener and be waiting there before the handlers come.
    await untilWaiting(bound, 1);
    expect(answered).toBe(false);
    bound.serve(answering(202));
    const res = await waiting;
    expect([res.status, await res.text()]).toEqual([202, "from the gateway"]);
    // From now on the gateway answers everything, /health too.
    expect((await fetch(url("/health"))).status).toBe(202);
  });

  test("waiting is bounded: past startup_waiting_max a request gets 503 at once, and past startup_wait_ms the waiting one does too", async () => {
    const { bound, url } = await bind({ startup_waiting_max: 1, startup_wait_ms: 300 });
    const first = fetch(url("/api/sessions"));
    await untilWaiting(bound, 1);
    const second = await fetch(url("/api/sessions"));
    expect([second.status, second.headers.get("retry-after")]).toEqual([503, "1"]);
    expect(((await second.json()) as { reason: string }).reason).toBe("the gateway is starting and too many requests are waiting");
    const res = await first;
    expect([res.status, res.headers.get("retry-after")]).toEqual([503, "1"]);
    expect(((await res.json()) as { reason: string }).reason).toBe("the gateway is still starting");
    expect(bound.waiting).toBe(0);
    // Served afterwards as usual.
    bound.serve(answering(202));
    expect((await fetch(url("/api/sessions"))).status).toBe(202);
  });

  test("a start that fails answers the waiting requests with 503 and removes the unix socket", async () => {
    const { bound, socket, url } = await bind();
    const waiting = fetch(url("/api/sessions"));
    await untilWaiting(bound, 1);
    await bound.abort();
    const res = await waiting;
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: "Service Unavailable", reason: "the gateway is not serving" });
    expect(existsSync(socket)).toBe(false);
  });
});
