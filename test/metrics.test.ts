/**
 * GET /metrics (issue #16 item 1) against a real gateway over real HTTP: the
 * exposition content type on loopback TCP and the unix socket; the turn,
 * delta, event, delivery and connection series move by exactly what a
 * streamed turn did; tool calls by outcome, agent restarts and disconnects,
 * storage faults, token issues and auth failures by reason move by exactly what
 * real traffic did; the exposure policy per bind; no secret in any label.
 * (Slow-consumer closes: test/slow-consumer.test.ts; storage faults on a full
 * disk: test/disk-full.test.ts.)
 */
import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { Hono } from "hono";
import { requireApiCredential } from "../src/auth/api-credential.ts";
import { IssuedTokens } from "../src/auth/issued-tokens.ts";
import { TrustPolicy } from "../src/auth/peer.ts";
import { resolveConfig } from "../src/config.ts";
import { metricsAccess, metricsRoute } from "../src/http/metrics.ts";
import { EXPOSITION_CONTENT_TYPE } from "../src/metrics/exposition.ts";
import { metricNames } from "../src/metrics/metrics.ts";
import { EVENT_TOO_LARGE, MESSAGE_NOT_STORED } from "../src/protocol/errors.ts";
import { type Frame, isTurnEnd, PY_AGENT, sendTurn, startTestGateway, TestClient, TRANSPORTS, upgradeRequest } from "./helpers.ts";
import { AGENT_TOKEN, RemoteAgent } from "./remote-agent.ts";
import { moved, scrape } from "./metrics-scrape.ts";

test("/metrics answers on loopback TCP and the unix socket with the exposition format and every family", async () => {
  const gw = await startTestGateway();
  for (const transport of TRANSPORTS) {
    const res = await gw.http(transport, "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(EXPOSITION_CONTENT_TYPE);
    const text = await res.text();
    for (const name of metricNames()) expect(text).toContain(`# TYPE ${name} `);
  }
});

test("a streamed turn moves the turn, delta, event, delivery and connection series by what it did", async () => {
  const gw = await startTestGateway();
  const tcp = gw.listeners.find((l) => l.transport === "tcp")!;
  const connections = `agentgate_connections{listener="${tcp.address}",transport="tcp"}`;
  const before = await scrape(gw);
  expect(before.get(connections)).toBe(0);
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
  const frames = await sendTurn(client, ready.chat_id, "one two three four five six seven eight");
  const after = await scrape(gw);
  const deltas = frames.filter((f) => f.event === "delta").length;
  const chatEvents = frames.filter((f) => typeof f.seq === "number");
  expect(deltas).toBeGreaterThan(1);
  expect(after.get(connections)).toBe(1);
  expect(moved(before, after, 'agentgate_turns_total{agent="echo",status="done"}')).toBe(1);
  expect(moved(before, after, 'agentgate_deltas_total{agent="echo"}')).toBe(deltas);
  expect(moved(before, after, 'agentgate_events_published_total{type="delta"}')).toBe(deltas);
  expect(moved(before, after, 'agentgate_events_published_total{type="turn_end"}')).toBe(1);
  expect(moved(before, after, 'agentgate_events_published_total{type="user"}')).toBe(1);
  // One subscriber: every event of the chat is one delivery.
  expect(moved(before, after, "agentgate_event_deliveries_total")).toBe(chatEvents.length);
  expect(moved(before, after, 'agentgate_turn_duration_seconds_count{agent="echo"}')).toBe(1);
  expect(moved(before, after, 'agentgate_turn_time_to_first_token_seconds_count{agent="echo"}')).toBe(1);
  expect(moved(before, after, "agentgate_commit_log_write_bytes_total")).toBeGreaterThan(0);
  expect(after.get("agentgate_chats_active")).toBe(0);
  client.ws.close();
  await client.closed;
  for (let i = 0; i < 100 && (await scrape(gw)).get(connections) !== 0; i++) await Bun.sleep(20);
  expect((await scrape(gw)).get(connections)).toBe(0);
});

test("an attach with since_seq counts one replay request and the events it replayed", async () => {
  const gw = await startTestGateway();
  const { client, ready } = await TestClient.ready(gw.wsUrl("unix"));
  const frames = await sendTurn(client, ready.chat_id, "alpha beta gamma");
  const before = await scrape(gw, "unix");
  const { client: second } = await TestClient.ready(gw.wsUrl("unix"));
  second.send({ type: "attach", chat_id: ready.chat_id, since_seq: 0 });
  const attached = await second.next();
  const replayed: Frame[] = [];
  while (replayed.at(-1)?.seq !== attached.latest_seq) replayed.push(await second.next());
  const after = await scrape(gw, "unix");
  expect(replayed.length).toBe(frames.filter((f) => typeof f.seq === "number").length);
  expect(moved(before, after, "agentgate_replay_requests_total")).toBe(1);
  const memory = moved(before, after, 'agentgate_replayed_events_total{source="memory"}');
  const disk = moved(before, after, 'agentgate_replayed_events_total{source="disk"}');
  expect(memory + disk).toBe(replayed.length);
});

test("uploads count their bytes when accepted and their reason when refused", async () => {
  const gw = await startTestGateway({ token: "t" });
  const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==", "base64");
  const upload = (body: Uint8Array, type: string) => gw.http("tcp", "/api/media?name=p.png", { method: "POST", body, headers: { authorization: "Bearer t", "content-type": type } });
  const before = await scrape(gw);
  expect((await upload(png, "image/png")).status).toBe(200);
  expect((await upload(Buffer.from("not a png at all"), "image/png")).status).toBe(415);
  const after = await scrape(gw);
  expect(moved(before, after, "agentgate_upload_bytes_total")).toBe(png.length);
  expect(moved(before, after, 'agentgate_upload_refusals_total{reason="wrong_type"}')).toBe(1);
  expect(moved(before, after, 'agentgate_upload_refusals_total{reason="too_large"}')).toBe(0);
});

test("device tool calls count once each, by outcome", async () => {
  const gw = await startTestGateway({ agent: "py", agents: { py: { type: "stdio", command: ["python3", PY_AGENT, "py"] } } });
  const outcome = (o: string) => `agentgate_tool_calls_total{outcome="${o}"}`;
  const before = await scrape(gw);
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp", { capabilities: "camera" }));
  client.send({ type: "message", chat_id: ready.chat_id, content: "tool camera" });
  const request = (await client.until((f) => f.event === "tool_request")).at(-1)!;
  client.send({ type: "tool_result", chat_id: ready.chat_id, call_id: request.call_id, ok: true, result: 1 });
  await client.until(isTurnEnd);
  // Nobody answers within the 150 ms deadline.
  await sendTurn(client, ready.chat_id, "tool camera 150");
  // No connected client offers "gps".
  await sendTurn(client, ready.chat_id, "tool gps");
  const after = await scrape(gw);
  expect(moved(before, after, outcome("ok"))).toBe(1);
  expect(moved(before, after, outcome("deadline_exceeded"))).toBe(1);
  expect(moved(before, after, outcome("no_capable_client"))).toBe(1);
  expect(moved(before, after, outcome("device_disconnected"))).toBe(0);
});

test("a stdio agent that exits counts one restart; a ws agent whose connection closes counts one disconnect", async () => {
  const gw = await startTestGateway({
    agent: "metrics_stdio",
    agents: { metrics_stdio: { type: "stdio", command: ["python3", PY_AGENT, "metrics_stdio"] }, metrics_ws: { type: "ws" } },
    agent_token: AGENT_TOKEN,
    agent_restart_backoff_ms: 50,
  });
  const restarts = 'agentgate_agent_restarts_total{agent="metrics_stdio"}';
  const disconnects = 'agentgate_agent_disconnects_total{agent="metrics_ws"}';
  const before = await scrape(gw, "unix");
  const { client, ready } = await TestClient.ready(gw.wsUrl("unix"));
  expect((await sendTurn(client, ready.chat_id, "crash")).find((f) => f.event === "turn_end")?.error).toBe("agent_exited");
  // The restarted process serves the next turn.
  expect((await sendTurn(client, ready.chat_id, "again")).find((f) => f.event === "turn_end")?.status).toBe("done");
  const agent = await RemoteAgent.connect(gw, "metrics_ws");
  client.send({ type: "new_chat", agent: "metrics_ws" });
  await client.until((f) => f.event === "attached");
  agent.ws.close();
  let after = await scrape(gw, "unix");
  for (let i = 0; i < 100 && moved(before, after, disconnects) === 0; i++) after = await Bun.sleep(20).then(() => scrape(gw, "unix"));
  expect(moved(before, after, restarts)).toBe(1);
  expect(moved(before, after, disconnects)).toBe(1);
});

test("storage faults count by kind: an event over the size guard, a seq the locked store cannot reserve", async () => {
  const gw = await startTestGateway({ transcript_max_line_bytes: 1024, sqlite_busy_timeout_ms: 10 });
  const fault = (kind: string) => `agentgate_storage_faults_total{kind="${kind}"}`;
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
  const before = await scrape(gw);
  // Each refused message: the chat hears why, the sender that it was not stored.
  const refused = (chatId: string) => client.until((f) => f.event === "error" && f.chat_id === chatId && f.reason === MESSAGE_NOT_STORED);
  client.send({ type: "message", chat_id: ready.chat_id, content: "x".repeat(2000) });
  expect((await refused(ready.chat_id)).some((f) => f.reason === EVENT_TOO_LARGE)).toBe(true);
  // SQLite's write lock held by another connection: a new chat's first seq cannot be reserved.
  const db = new Database(join(gw.dir, "data", "agentgate.db"));
  db.exec("BEGIN EXCLUSIVE");
  const fresh = crypto.randomUUID();
  client.send({ type: "message", chat_id: fresh, content: "into a chat the store cannot create" });
  await refused(fresh);
  db.exec("ROLLBACK");
  db.close();
  const after = await scrape(gw);
  expect(moved(before, after, fault("event_too_large"))).toBe(1);
  expect(moved(before, after, fault("seq_reserve"))).toBe(1);
});

test("tokens issued count by route; refused credentials count by reason", async () => {
  const gw = await startTestGateway({
    websocket_requires_token: true,
    token_issue_path: "/auth/token",
    token_issue_secret: "issue-secret",
    allow_from: ["allowed"],
    agents: { metrics_ws: { type: "ws" } },
    agent_token: AGENT_TOKEN,
  });
  const issued = (route: string) => `agentgate_tokens_issued_total{route="${route}"}`;
  const failed = (reason: string) => `agentgate_auth_failures_total{reason="${reason}"}`;
  const issue = async () => ((await (await gw.http("tcp", "/auth/token", { headers: { authorization: "Bearer issue-secret" } })).json()) as { token: string }).token;
  const before = await scrape(gw, "unix");
  await issue();
  expect((await gw.http("tcp", "/webui/bootstrap", { headers: { authorization: "Bearer issue-secret" } })).status).toBe(200);
  expect((await gw.http("tcp", "/auth/token", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
  expect((await upgradeRequest(gw, "tcp", "/?client_id=allowed")).status).toBe(401);
  expect((await upgradeRequest(gw, "tcp", "/?client_id=allowed&token=made-up")).status).toBe(401);
  expect((await upgradeRequest(gw, "tcp", `/?token=${await issue()}&client_id=stranger`)).status).toBe(403);
  const fromElsewhere = await gw.http("tcp", "/", { headers: { upgrade: "websocket", connection: "Upgrade", origin: "https://elsewhere.example" } });
  expect(fromElsewhere.status).toBe(403);
  expect((await upgradeRequest(gw, "unix", "/agent?token=wrong")).status).toBe(401);
  expect((await gw.http("tcp", "/api/sessions")).status).toBe(401);
  expect((await gw.http("tcp", "/api/sessions", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
  const after = await scrape(gw, "unix");
  expect(moved(before, after, issued("token_issue"))).toBe(2);
  expect(moved(before, after, issued("bootstrap"))).toBe(1);
  const expected = { issue_secret: 1, missing_token: 1, invalid_token: 1, not_allowed: 1, origin: 1, agent_token: 1, api_missing: 1, api_invalid: 1, not_local: 0 };
  for (const [reason, count] of Object.entries(expected)) expect([reason, moved(before, after, failed(reason))]).toEqual([reason, count]);
});

test("exposure policy: open on loopback and the unix socket, absent or behind the API credential elsewhere", () => {
  const loopback = resolveConfig({}).config;
  const publicBind = (metrics_enabled: string) => resolveConfig({ host: "0.0.0.0", token: "s3cret-static", metrics_enabled }).config;
  expect(loopback.metrics_enabled).toBe("auto");
  expect(metricsAccess(loopback, "tcp")).toBe("open");
  expect(metricsAccess(loopback, "unix")).toBe("open");
  expect(metricsAccess(publicBind("auto"), "tcp")).toBe("off");
  expect(metricsAccess(publicBind("auto"), "unix")).toBe("open");
  expect(metricsAccess(publicBind("on"), "tcp")).toBe("credential");
  expect(metricsAccess(publicBind("off"), "unix")).toBe("off");
  expect(metricsAccess(resolveConfig({ metrics_enabled: "off" }).config, "tcp")).toBe("off");
  expect(() => resolveConfig({ metrics_enabled: "yes" })).toThrow();
});

test("on a public bind with metrics_enabled=on, /metrics needs the API credential; with auto it is 404", async () => {
  const app = (metrics_enabled: string) => {
    const config = resolveConfig({ host: "0.0.0.0", token: "s3cret-static", metrics_enabled }).config;
    const route = metricsRoute(config, new TrustPolicy(config), requireApiCredential(config, new IssuedTokens(60_000, 10)), { render: () => "" });
    return new Hono().get("/metrics", route);
  };
  const env = { port: 8765 };
  const on = app("on");
  expect((await on.request("/metrics", {}, env)).status).toBe(401);
  expect((await on.request("/metrics", { headers: { Authorization: "Bearer wrong" } }, env)).status).toBe(401);
  const ok = await on.request("/metrics", { headers: { Authorization: "Bearer s3cret-static" } }, env);
  expect(ok.status).toBe(200);
  expect(await ok.text()).toContain("# TYPE agentgate_turns_total counter");
  expect((await app("auto").request("/metrics", { headers: { Authorization: "Bearer s3cret-static" } }, env)).status).toBe(404);
});

test("on a loopback bind, a request that is not from a local peer (foreign Host, proxied) needs the API credential", async () => {
  const gw = await startTestGateway({ token: "static-TOKEN-for-metrics" });
  expect((await gw.http("tcp", "/metrics", { headers: { Host: "rebound.example" } })).status).toBe(401);
  expect((await gw.http("tcp", "/metrics", { headers: { "X-Forwarded-For": "203.0.113.9" } })).status).toBe(401);
  const withCredential = await gw.http("tcp", "/metrics", { headers: { Host: "rebound.example", Authorization: "Bearer static-TOKEN-for-metrics" } });
  expect(withCredential.status).toBe(200);
  expect(withCredential.headers.get("content-type")).toBe(EXPOSITION_CONTENT_TYPE);
});

test("metrics_enabled=off: /metrics is 404 on every listener", async () => {
  const gw = await startTestGateway({ metrics_enabled: "off" });
  for (const transport of TRANSPORTS) expect((await gw.http(transport, "/metrics")).status).toBe(404);
});

test("no token or secret appears in any label value, whatever was presented", async () => {
  const secrets = { token: "static-TOKEN-abc123", jwt_secret: "jwt-SECRET-def456-0123456789abcdef0123", agent_token: "agent-TOKEN-ghi789", token_issue_secret: "issue-SECRET-jkl012" };
  const gw = await startTestGateway({ ...secrets, agents: { remote: { type: "ws" } } });
  const wrong = "presented-WRONG-token-mno345";
  const refused = await fetch(gw.wsUrl("tcp", { token: wrong }).replace("ws:", "http:"), { headers: { Upgrade: "websocket", Connection: "Upgrade" } });
  expect(refused.status).toBe(401);
  expect((await gw.http("tcp", `/api/sessions?token=${wrong}`)).status).toBe(401);
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp", { token: secrets.token }));
  await sendTurn(client, ready.chat_id, secrets.jwt_secret);
  const res = await gw.http("unix", "/metrics");
  const text = await res.text();
  for (const value of [...Object.values(secrets), wrong]) expect(text).not.toContain(value);
  const labelValues = [...text.matchAll(/="([^"]*)"/g)].map((m) => m[1]!);
  const tcp = gw.listeners.find((l) => l.transport === "tcp")!.address;
  for (const v of labelValues) expect(v === tcp || v === gw.config.unix_socket_path || /^[a-z_+.0-9-]*$/i.test(v)).toBe(true);
  expect(text).toMatch(/agentgate_auth_failures_total\{reason="invalid_token"\} [1-9]/);
  expect(text).toMatch(/agentgate_auth_failures_total\{reason="api_invalid"\} [1-9]/);
});
