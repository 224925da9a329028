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
import { bindListeners, type ConnectionHandlers } from "../src/listen.ts";
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

describe("during start-up (listeners bound before the gateway is built)", () => {
  const bind = async () => {
    const dir = tempDir();
    const { config } = resolveConfig({ port: 0, data_dir: join(dir, "data"), unix_socket_path: join(dir, "gw.sock") });
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
    // Let the request reach the listener; it must still be waiting.
    expect((await fetch(url("/health"))).status).toBe(200);
    expect(answered).toBe(false);
    bound.serve(answering(202));
    const res = await waiting;
    expect([res.status, await res.text()]).toEqual([202, "from the gateway"]);
    // From now on the gateway answers everything, /health too.
    expect((await fetch(url("/health"))).status).toBe(202);
  });

  test("a start that fails answers the waiting requests with 503 and removes the unix socket", async () => {
    const { bound, socket, url } = await bind();
    const waiting = fetch(url("/api/sessions"));
    expect((await fetch(url("/health"))).status).toBe(200);
    await bound.abort();
    const res = await waiting;
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: "Service Unavailable", reason: "the gateway is not serving" });
    expect(existsSync(socket)).toBe(false);
  });
});
