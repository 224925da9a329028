/**
 * Operational logs (issue #16): one line per connection open and close, per turn
 * end and per HTTP request (not per media GET), as text or JSON, and never a
 * secret or token — the whole log of a run using every kind of credential is
 * searched for each one.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { resolveConfig } from "../src/config.ts";
import { startGateway } from "../src/gateway.ts";
import { createLogger } from "../src/log.ts";
import { type Frame, isTurnEnd, onCleanup, TestClient, tempDir } from "./helpers.ts";

const STATIC = "static-client-token-0123456789";
const ISSUE_SECRET = "issue-secret-0123456789";
const JWT_SECRET = "a-jwt-secret-that-is-long-enough-0123456789";

async function waitFor<T>(find: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const found = find();
    if (found !== undefined) return found;
    await Bun.sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("text lines read `time LEVEL msg key=value`; json lines are objects; below the level nothing is written", () => {
  const out: string[] = [];
  const text = createLogger("info", "text", (l) => out.push(l));
  text.debug("hidden", { a: 1 });
  text.info("turn end", { status: "done", deltas: 3, error: "agent said \"no\"" });
  expect(out).toHaveLength(1);
  expect(out[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z INFO  turn end status=done deltas=3 error="agent said \\"no\\""\n$/);
  createLogger("warn", "json", (l) => out.push(l)).warn("slow", { ms: 2 });
  expect(JSON.parse(out[1]!)).toMatchObject({ level: "warn", msg: "slow", ms: 2 });
});

test("connections, turns and HTTP requests are logged once each, and no credential appears in the log", async () => {
  const dir = tempDir();
  const sock = join(dir, "gw.sock");
  const lines: string[] = [];
  const { config } = resolveConfig({
    port: 0,
    data_dir: join(dir, "data"),
    unix_socket_path: sock,
    token: STATIC,
    token_issue_path: "/auth/token",
    token_issue_secret: ISSUE_SECRET,
    jwt_secret: JWT_SECRET,
    echo_chunk_size: 2,
    log_format: "json",
    shutdown_grace_ms: 500,
  });
  const gw = await startGateway(config, createLogger("debug", config.log_format, (l) => lines.push(l)));
  onCleanup(() => gw.stop());
  const base = `http://127.0.0.1:${gw.listeners[0]!.server.port}`;
  const records = () => lines.map((l) => JSON.parse(l) as Frame);

  const issued = (await (await fetch(`${base}/auth/token`, { method: "POST", headers: { authorization: `Bearer ${ISSUE_SECRET}` } })).json()) as { token: string };
  const boot = (await (await fetch(`${base}/webui/bootstrap`, { headers: { authorization: `Bearer ${ISSUE_SECRET}` } })).json()) as { token: string; api_token: string };
  expect((await fetch(`${base}/api/sessions`, { headers: { authorization: `Bearer ${boot.api_token}` } })).status).toBe(200);
  expect((await fetch(`${base}/api/media/not-a-signature/not-a-payload`)).status).toBeGreaterThanOrEqual(400);
  expect((await fetch(`${base}/health`)).status).toBe(200);

  const { client: viaIssued } = await TestClient.ready(`ws://127.0.0.1:${gw.listeners[0]!.server.port}/?token=${issued.token}&client_id=tcp-1`);
  viaIssued.ws.close(1000);
  const { client, ready } = await TestClient.ready(`ws+unix://${sock}:/?token=${STATIC}&client_id=dev-1`);
  client.send({ type: "message", chat_id: ready.chat_id, content: "hello logs" });
  await client.until(isTurnEnd);
  client.ws.close(1000);
  await waitFor(() => records().find((r) => r.msg === "client disconnected" && r.client_id === "dev-1"), "the close line");
  await waitFor(() => records().find((r) => r.msg === "client disconnected" && r.client_id === "tcp-1"), "the tcp close line");

  const all = records();
  const of = (msg: string) => all.filter((r) => r.msg === msg);
  expect(of("client connected").map((r) => [r.listener, r.client_id]).sort()).toEqual([["tcp", "tcp-1"], ["unix", "dev-1"]]);
  const closed = of("client disconnected").find((r) => r.client_id === "dev-1")!;
  expect(closed).toMatchObject({ level: "info", listener: "unix", close_code: 1000 });
  expect(closed.duration_s).toBeGreaterThanOrEqual(0);
  const [turn] = of("turn end");
  expect(turn).toMatchObject({ chat_id: ready.chat_id, agent: "echo", status: "done", deltas: 5 });
  expect(turn!.ttft_ms).toBeGreaterThanOrEqual(0);
  expect(turn!.duration_ms).toBeGreaterThanOrEqual(turn!.ttft_ms);
  const requests = of("http request").map((r) => `${r.level} ${r.method} ${r.route} ${r.status}`);
  expect(requests).toEqual(["info POST /auth/token 200", "info GET /webui/bootstrap 200", "info GET /api/sessions 200", "debug GET /health 200"]);
  expect(of("http request").every((r) => typeof r.ms === "number")).toBe(true);

  const log = lines.join("");
  for (const secret of [STATIC, ISSUE_SECRET, JWT_SECRET, issued.token, boot.token, boot.api_token]) expect(log).not.toContain(secret);
});
