/**
 * GET /metrics (issue #16 item 1) against a real gateway over real HTTP: the
 * exposition content type on loopback TCP and the unix socket; the turn,
 * delta, event, delivery and connection series move by exactly what a
 * streamed turn did; the exposure policy per bind; no secret in any label.
 */
import { expect, test } from "bun:test";
import { Hono } from "hono";
import { requireApiCredential } from "../src/auth/api-credential.ts";
import { IssuedTokens } from "../src/auth/issued-tokens.ts";
import { TrustPolicy } from "../src/auth/peer.ts";
import { resolveConfig } from "../src/config.ts";
import { metricsAccess, metricsRoute } from "../src/http/metrics.ts";
import { EXPOSITION_CONTENT_TYPE } from "../src/metrics/exposition.ts";
import { metricNames } from "../src/metrics/metrics.ts";
import { type Frame, sendTurn, startTestGateway, type TestGateway, TestClient, TRANSPORTS, type Transport } from "./helpers.ts";

/** Samples by their series text (`name{labels}`); comments skipped. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function scrape(gw: TestGateway, transport: Transport = "tcp"): Promise<Map<string, number>> {
  const res = await gw.http(transport, "/metrics");
  expect(res.status).toBe(200);
  return samples(await res.text());
}

const moved = (before: Map<string, number>, after: Map<string, number>, series: string) => (after.get(series) ?? 0) - (before.get(series) ?? 0);

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
  const ring = moved(before, after, 'agentgate_replayed_events_total{source="ring"}');
  const disk = moved(before, after, 'agentgate_replayed_events_total{source="disk"}');
  expect(ring + disk).toBe(replayed.length);
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
