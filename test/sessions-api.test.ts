import { describe, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { sign } from "hono/jwt";
import { type Frame, isTurnEnd, startTestGateway, TestClient, type TestGateway, TRANSPORTS, type Transport } from "./helpers.ts";

interface Bootstrap {
  token: string;
  api_token: string;
  ws_path: string;
  ws_url: string;
  expires_in: number;
  model_name: string | null;
  runtime_surface: string;
  runtime_capabilities: Record<string, boolean>;
  agents: string[];
  default_agent: string;
}

async function bootstrap(gw: TestGateway, transport: Transport = "tcp", headers: Record<string, string> = {}): Promise<Bootstrap> {
  const res = await gw.http(transport, "/webui/bootstrap", { headers });
  expect(res.status).toBe(200);
  return (await res.json()) as Bootstrap;
}

/** A chat with one finished turn, made over the WebSocket. */
async function chatWithTurn(gw: TestGateway, content: string): Promise<{ chatId: string; frames: Frame[]; client: TestClient }> {
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp", gw.config.token ? { token: gw.config.token } : {}));
  client.send({ type: "message", chat_id: ready.chat_id, content });
  return { chatId: ready.chat_id, frames: await client.until(isTurnEnd), client };
}

const json = async (res: Response | Promise<Response>): Promise<Frame> => (await (await res).json()) as Frame;

const api = (gw: TestGateway, path: string, token: string, init: RequestInit = {}) =>
  gw.http("tcp", path, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } });

describe("bootstrap", () => {
  for (const transport of TRANSPORTS) {
    test(`without a secret, local peers get a WebSocket token and an API token (${transport})`, async () => {
      const gw = await startTestGateway({ websocket_requires_token: true, path: "/ws" });
      const boot = await bootstrap(gw, transport);
      expect(boot).toMatchObject({ ws_path: "/ws", expires_in: 300, model_name: "echo", runtime_surface: "browser", agents: ["echo"], default_agent: "echo" });
      expect(boot.runtime_capabilities).toEqual({ can_restart_engine: false, can_pick_folder: false, can_open_logs: false, can_export_diagnostics: false });
      expect(boot.token).not.toBe(boot.api_token);
      expect((await TestClient.ready(gw.wsUrl(transport, { token: boot.token }))).ready.event).toBe("ready");
      expect((await api(gw, "/api/sessions", boot.api_token)).status).toBe(200);
      expect((await api(gw, "/api/sessions", boot.api_token)).status).toBe(200);
      // The WebSocket token of a local browser also serves the sessions API (bootstrap_token_api_access), never the publish API.
      expect((await api(gw, "/api/sessions", boot.token)).status).toBe(200);
      expect((await api(gw, "/api/chats/c1/messages", boot.token, { method: "POST", body: JSON.stringify({ text: "x" }) })).status).toBe(401);
    });
  }

  test("lists every configured agent and the default one (additive fields), for a page to choose from", async () => {
    const gw = await startTestGateway({ agent: "b", agents: { b: { type: "ws" }, a: { type: "ws" } }, agent_token: "agent-secret" });
    const boot = await bootstrap(gw);
    expect({ agents: boot.agents, default_agent: boot.default_agent }).toEqual({ agents: ["echo", "b", "a"], default_agent: "b" });
  });

  test("a configured secret is required even from loopback", async () => {
    const gw = await startTestGateway({ token_issue_secret: "s3" });
    expect((await gw.http("tcp", "/webui/bootstrap")).status).toBe(401);
    expect((await gw.http("unix", "/webui/bootstrap", { headers: { authorization: "Bearer nope" } })).status).toBe(401);
    expect((await bootstrap(gw, "tcp", { "x-nanobot-auth": "s3" })).token).toStartWith("nbwt_");
  });

  test("ws_url follows an allowed Host, and X-Forwarded-Proto only from a trusted proxy", async () => {
    const gw = await startTestGateway({ path: "/chat", allowed_hosts: ["gw.example"] });
    expect((await bootstrap(gw, "tcp", { host: "gw.example:9443", "x-forwarded-proto": "https" })).ws_url).toBe("ws://gw.example:9443/chat");
    expect((await bootstrap(gw, "tcp", { host: "[::1]:8000" })).ws_url).toBe("ws://[::1]:8000/chat");
    expect((await gw.http("tcp", "/webui/bootstrap", { headers: { host: "bad_host" } })).status).toBe(403);
    const proxied = await startTestGateway({ path: "/chat", allowed_hosts: ["gw.example"], trusted_proxies: ["127.0.0.1"] });
    const viaProxy = { host: "gw.example", "x-forwarded-proto": "https", "x-forwarded-for": "127.0.0.1" };
    expect((await bootstrap(proxied, "tcp", viaProxy)).ws_url).toBe("wss://gw.example/chat");
    expect((await gw.http("tcp", "/webui/bootstrap", { headers: { host: "evil host/x" } })).status).toBe(400);
    expect((await gw.http("tcp", "/health")).status).toBe(200);
  });

  test("429 when the token cap is reached", async () => {
    const gw = await startTestGateway({ max_outstanding_tokens: 1 });
    await bootstrap(gw);
    expect((await gw.http("tcp", "/webui/bootstrap")).status).toBe(429);
  });
});

describe("sessions API", () => {
  test("needs a credential: API token, static token or JWT, as Bearer or ?token=", async () => {
    const secret = "jwt-secret-jwt-secret-jwt-secret-jwt-secret";
    const gw = await startTestGateway({ token: "static", jwt_secret: secret });
    expect((await gw.http("tcp", "/api/sessions")).status).toBe(401);
    expect(await (await gw.http("tcp", "/api/sessions?token=wrong")).json()).toMatchObject({ error: "Unauthorized" });
    expect((await gw.http("tcp", "/api/sessions?token=static")).status).toBe(200);
    const jwt = await sign({ sub: "u", exp: Math.floor(Date.now() / 1000) + 60 }, secret, "HS256");
    expect((await api(gw, "/api/sessions", jwt)).status).toBe(200);
    const { api_token } = await bootstrap(gw, "tcp", { authorization: "Bearer static" });
    expect((await gw.http("tcp", `/api/sessions?token=${api_token}`)).status).toBe(200);
  });

  test("a method a route does not take is a JSON 404, never HTML", async () => {
    const gw = await startTestGateway({ token: "t" });
    const { chatId } = await chatWithTurn(gw, "x");
    for (const [method, path] of [["PUT", `/api/sessions/websocket:${chatId}/delete`], ["POST", "/api/sessions"], ["PATCH", `/api/sessions/websocket:${chatId}/messages`]] as const) {
      const res = await api(gw, path, "t", { method });
      expect([res.status, res.headers.get("content-type")]).toEqual([404, "application/json"]);
    }
  });

  test("lists chats newest first with title, preview and run_started_at, and no filesystem paths", async () => {
    const gw = await startTestGateway({ echo_chunk_size: 1, echo_delay_ms: 3 });
    const { api_token } = await bootstrap(gw);
    const older = await chatWithTurn(gw, "first   chat\nhere");
    const { client, ready } = await TestClient.ready(gw.wsUrl("unix"));
    client.send({ type: "message", chat_id: ready.chat_id, content: "second chat, still running" });
    await client.until((f) => f.event === "delta");
    const body = await json(api(gw, "/api/sessions", api_token));
    expect(body.sessions.map((s: Frame) => s.key)).toEqual([`websocket:${ready.chat_id}`, `websocket:${older.chatId}`]);
    expect(body.sessions[0]).toMatchObject({ preview: "second chat, still running", title: null, run_started_at: expect.any(Number) });
    expect(body.sessions[1]).toMatchObject({ preview: "first chat here" });
    expect(body.sessions[1]).not.toHaveProperty("run_started_at");
    expect(JSON.stringify(body)).not.toContain(gw.dir);
  });

  test("messages and webui-thread fold the transcript", async () => {
    const gw = await startTestGateway({ echo_chunk_size: 3 });
    const { api_token } = await bootstrap(gw);
    const { chatId, frames } = await chatWithTurn(gw, "hello there");
    await Bun.sleep(gw.config.transcript_flush_ms * 3);
    const key = encodeURIComponent(`websocket:${chatId}`);
    const messages = await json(api(gw, `/api/sessions/${key}/messages`, api_token));
    expect(messages).toMatchObject({ key: `websocket:${chatId}`, metadata: {} });
    expect(messages.messages).toEqual([
      { role: "user", content: "hello there" },
      { role: "assistant", content: "hello there" },
    ]);
    const thread = await json(api(gw, `/api/sessions/${key}/webui-thread`, api_token));
    expect(thread).toMatchObject({ schemaVersion: 3, sessionKey: `websocket:${chatId}`, workspace_scope: null });
    expect(thread.messages.map((m: Frame) => [m.role, m.content])).toEqual([
      ["user", "hello there"],
      ["assistant", "hello there"],
    ]);
    expect(thread.messages[1].latencyMs).toBe(frames.find((f) => f.event === "turn_end")!.latency_ms);
    // A chat with nothing said in it yet has no thread.
    const { client } = await TestClient.ready(gw.wsUrl("tcp", gw.config.token ? { token: gw.config.token } : {}));
    client.send({ type: "new_chat" });
    const empty = (await client.until((f) => f.event === "attached")).at(-1)!.chat_id as string;
    await client.until((f) => f.event === "session_updated");
    const missing = await api(gw, `/api/sessions/websocket%3A${empty}/webui-thread`, api_token);
    expect([missing.status, ((await missing.json()) as { reason: string }).reason]).toEqual([404, "webui thread not found"]);
  });

  test.each([
    ["bad%20key", 400, "invalid session key"],
    ["websocket%3Aa%2Fb", 400, "invalid session key"],
    ["%E0%A4%A", 400, "invalid session key"],
    ["x".repeat(129), 400, "invalid session key"],
    ["cli%3Aabc", 404, "session not found"],
    ["websocket%3Anope", 404, "session not found"],
    ["websocket%3Aa.b", 404, "session not found"],
  ])("key %s → %d", async (key, status, text) => {
    const gw = await startTestGateway({ token: "t" });
    for (const route of ["messages", "webui-thread", "delete", "rename?title=x"]) {
      const res = await api(gw, `/api/sessions/${key}/${route}`, "t");
      expect([res.status, ((await res.json()) as { reason: string }).reason]).toEqual([status, text]);
    }
  });

  test("rename emits session_updated with the title; delete removes row and transcript", async () => {
    const gw = await startTestGateway({ token: "t" });
    const { chatId, client } = await chatWithTurn(gw, "to be renamed");
    const key = `websocket:${chatId}`;
    expect((await api(gw, `/api/sessions/${key}/rename?title=`, "t")).status).toBe(400);
    const renamed = await api(gw, `/api/sessions/${key}/rename`, "t", { method: "POST", body: JSON.stringify({ title: "My chat" }), headers: { "content-type": "application/json" } });
    expect(await json(renamed)).toEqual({ key, title: "My chat" });
    expect(await client.next()).toMatchObject({ event: "session_updated", chat_id: chatId, scope: "metadata", title: "My chat" });
    expect((await json(api(gw, "/api/sessions", "t"))).sessions[0].title).toBe("My chat");

    const file = join(gw.config.data_dir, "transcripts", `${chatId}.jsonl`);
    await Bun.sleep(gw.config.transcript_flush_ms * 3);
    expect(existsSync(file)).toBe(true);
    expect((await api(gw, `/api/sessions/${key}/delete`, "t", { method: "DELETE" })).status).toBe(200);
    expect(existsSync(file)).toBe(false);
    expect((await json(api(gw, "/api/sessions", "t"))).sessions).toEqual([]);
    expect((await api(gw, `/api/sessions/${key}/delete`, "t")).status).toBe(404);
  });

  test("deleting a chat mid-turn stops the turn and nothing resurrects it", async () => {
    const gw = await startTestGateway({ token: "t", echo_chunk_size: 1, echo_delay_ms: 2 });
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp", { token: "t" }));
    client.send({ type: "message", chat_id: ready.chat_id, content: "x".repeat(500) });
    await client.until((f) => f.event === "delta");
    expect(await json(api(gw, `/api/sessions/websocket:${ready.chat_id}/delete`, "t"))).toEqual({ deleted: true });
    await Bun.sleep(50);
    expect((await json(api(gw, "/api/sessions", "t"))).sessions).toEqual([]);
    expect(existsSync(join(gw.config.data_dir, "transcripts", `${ready.chat_id}.jsonl`))).toBe(false);
  });
});
