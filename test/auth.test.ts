import { describe, expect, test } from "bun:test";
import { sign } from "hono/jwt";
import { IssuedTokens } from "../src/auth/issued-tokens.ts";
import { requestProvesSecret, secretEquals } from "../src/auth/secret.ts";
import { startTestGateway, TestClient, TRANSPORTS, upgradeRequest, type TestGateway, type Transport } from "./helpers.ts";

const JWT_SECRET = "a-jwt-secret-that-is-long-enough-0123456789";

async function issue(gw: TestGateway, transport: Transport, headers: Record<string, string>, method = "GET") {
  return gw.http(transport, "/auth/token", { method, headers });
}

const status = async (gw: TestGateway, transport: Transport, query: string) => (await upgradeRequest(gw, transport, `/${query}`)).status;

describe("secrets", () => {
  test("secretEquals compares content, not just length, and survives non-ASCII", () => {
    expect(secretEquals("s3cret", "s3cret")).toBe(true);
    expect(secretEquals("s3cres", "s3cret")).toBe(false);
    expect(secretEquals("", "s3cret")).toBe(false);
    expect(secretEquals("ünïcødé", "ünïcødé")).toBe(true);
  });

  test("route secret: Bearer is decisive, else X-Agentgate-Auth or X-Nanobot-Auth; empty secret guards nothing", () => {
    const h = (init: Record<string, string>) => new Headers(init);
    expect(requestProvesSecret(h({ authorization: "Bearer my-secret" }), "my-secret")).toBe(true);
    expect(requestProvesSecret(h({ "x-nanobot-auth": " my-secret " }), "my-secret")).toBe(true);
    expect(requestProvesSecret(h({ "x-agentgate-auth": "my-secret" }), "my-secret")).toBe(true);
    expect(requestProvesSecret(h({ authorization: "Bearer other", "x-nanobot-auth": "my-secret" }), "my-secret")).toBe(false);
    expect(requestProvesSecret(h({ authorization: "Basic xyz", "x-nanobot-auth": "my-secret" }), "my-secret")).toBe(true);
    expect(requestProvesSecret(h({}), "my-secret")).toBe(false);
    expect(requestProvesSecret(h({}), "")).toBe(true);
  });
});

describe("issued tokens", () => {
  test("single use, expire after the TTL, and are capped", () => {
    let now = 1_000_000;
    const tokens = new IssuedTokens(30_000, 2, () => now);
    const a = tokens.issue()!;
    expect(a).toMatch(/^nbwt_[A-Za-z0-9_-]{43}$/);
    expect(tokens.consume(a)).toBe(true);
    expect(tokens.consume(a)).toBe(false);
    const b = tokens.issue()!;
    tokens.issue();
    expect(tokens.issue()).toBeUndefined();
    now += 30_001;
    expect(tokens.consume(b)).toBe(false);
    expect(tokens.issue()).toBeDefined();
    expect(tokens.outstanding).toBe(1);
  });

  test("API tokens stay live across checks until they expire", () => {
    let now = 0;
    const tokens = new IssuedTokens(30_000, 10, () => now);
    const t = tokens.issue()!;
    expect(tokens.isLive(t)).toBe(true);
    expect(tokens.isLive(t)).toBe(true);
    expect(tokens.isLive("nbwt_unknown")).toBe(false);
    now = 30_001;
    expect(tokens.isLive(t)).toBe(false);
  });
});

for (const transport of TRANSPORTS) {
  describe(`handshake auth over ${transport}`, () => {
    test("allow_from is checked before auth: 403 for others, [] denies all", async () => {
      const gw = await startTestGateway({ allow_from: ["alice", "bob"], token: "secret" });
      expect(await status(gw, transport, "?client_id=eve&token=secret")).toBe(403);
      expect(await status(gw, transport, "?client_id=eve")).toBe(403);
      expect(await status(gw, transport, "?token=secret")).toBe(403);
      const { ready } = await TestClient.ready(gw.wsUrl(transport, { client_id: "alice", token: "secret" }));
      expect(ready.client_id).toBe("alice");
      const closed = await startTestGateway({ allow_from: [] });
      expect(await status(closed, transport, "?client_id=alice")).toBe(403);
    });

    test("static token: equal token accepted, others 401 with a JSON reason", async () => {
      const gw = await startTestGateway({ token: "secret" });
      const refused = await upgradeRequest(gw, transport, "/?token=wrong");
      expect(refused.status).toBe(401);
      expect(await refused.json()).toMatchObject({ error: "Unauthorized" });
      expect(await status(gw, transport, "")).toBe(401);
      expect((await TestClient.ready(gw.wsUrl(transport, { token: "secret" }))).ready.event).toBe("ready");
    });

    test("requires token without static token: only issued tokens, each once", async () => {
      const gw = await startTestGateway({ websocket_requires_token: true, token_issue_path: "/auth/token", token_issue_secret: "s" });
      expect(await status(gw, transport, "")).toBe(401);
      expect(await status(gw, transport, "?token=nbwt_made_up")).toBe(401);
      expect((await issue(gw, transport, {})).status).toBe(401);
      const res = await issue(gw, transport, { authorization: "Bearer s" });
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
      const { token, expires_in } = (await res.json()) as { token: string; expires_in: number };
      expect(expires_in).toBe(300);
      const { ready } = await TestClient.ready(gw.wsUrl(transport, { token, client_id: "me" }));
      expect(ready.client_id).toBe("me");
      expect(await status(gw, transport, `?token=${token}`)).toBe(401);
    });

    test("token issue: POST too, X-Agentgate-Auth and X-Nanobot-Auth, static token as fallback secret", async () => {
      const gw = await startTestGateway({ token: "static", token_issue_path: "/auth/token" });
      expect((await issue(gw, transport, { authorization: "Bearer nope" })).status).toBe(401);
      expect((await issue(gw, transport, { "x-nanobot-auth": "static" })).status).toBe(200);
      const res = await issue(gw, transport, { "x-agentgate-auth": "static" }, "POST");
      const { token } = (await res.json()) as { token: string };
      expect((await TestClient.ready(gw.wsUrl(transport, { token }))).ready.event).toBe("ready");
    });

    test("token issue answers 429 JSON at the outstanding cap", async () => {
      const gw = await startTestGateway({ token_issue_path: "/auth/token", token_issue_secret: "s", max_outstanding_tokens: 2 });
      const auth = { authorization: "Bearer s" };
      expect((await issue(gw, transport, auth)).status).toBe(200);
      expect((await issue(gw, transport, auth)).status).toBe(200);
      const full = await issue(gw, transport, auth);
      expect(full.status).toBe(429);
      expect(await full.json()).toMatchObject({ error: "too many outstanding tokens" });
    });

    test("without any token requirement a presented issued token is still consumed", async () => {
      const gw = await startTestGateway({ websocket_requires_token: false });
      const token = (await gw.wsTokens.issue())!;
      await TestClient.ready(gw.wsUrl(transport, { token }));
      expect(await gw.wsTokens.consume(token)).toBe(false);
    });

    test("JWT (HS256) with sub and exp is a credential; expired, subject-less or foreign ones are 401", async () => {
      const gw = await startTestGateway({ websocket_requires_token: true, jwt_secret: JWT_SECRET });
      const exp = Math.floor(Date.now() / 1000) + 60;
      const good = await sign({ sub: "user-1", exp }, JWT_SECRET, "HS256");
      expect((await TestClient.ready(gw.wsUrl(transport, { token: good }))).ready.event).toBe("ready");
      expect((await TestClient.ready(gw.wsUrl(transport, { token: good }))).ready.event).toBe("ready");
      const expired = await sign({ sub: "user-1", exp: exp - 120 }, JWT_SECRET, "HS256");
      const noSub = await sign({ exp }, JWT_SECRET, "HS256");
      const noExp = await sign({ sub: "user-1" }, JWT_SECRET, "HS256");
      const foreign = await sign({ sub: "user-1", exp }, `${JWT_SECRET}-other`, "HS256");
      for (const token of [expired, noSub, noExp, foreign]) expect(await status(gw, transport, `?token=${token}`)).toBe(401);
    });
  });
}

test("unknown routes answer JSON 404: /api ones with nanobot's error, others with a reason", async () => {
  const gw = await startTestGateway();
  const api = await gw.http("tcp", "/api/nope");
  expect(api.status).toBe(404);
  expect(await api.json()).toMatchObject({ error: "API route not found" });
  const other = await gw.http("unix", "/nope");
  expect(other.status).toBe(404);
  expect(await other.json()).toEqual({ error: "Not Found", reason: "no such page" });
});
