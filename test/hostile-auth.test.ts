/**
 * Hostile requests against every door that grants trust: rebinding Host names,
 * forged forwarding headers, foreign Origins, reused / expired / forged
 * tokens, the client credential on the agent path, missing credentials and
 * request floods. Every attempt is counted and printed; none may get through.
 * Positive controls show each door still opens for the legitimate caller.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { sign } from "hono/jwt";
import { type Frame, startTestGateway, TestClient, type TestGateway, type Transport } from "./helpers.ts";

const JWT_SECRET = "a-jwt-secret-that-is-long-enough-0123456789";
const UPGRADE = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" };

let attempts = 0;
const breaches: string[] = [];

/** One hostile attempt: it must be refused with `status` and a JSON reason. */
async function attempt(name: string, res: Response, status: number): Promise<void> {
  attempts++;
  const body = await res.text();
  let json: Frame | undefined;
  try {
    json = JSON.parse(body);
  } catch {}
  if (res.status !== status || typeof json?.reason !== "string") breaches.push(`${name}: ${res.status} ${body.slice(0, 120)}`);
}

afterAll(() => {
  process.stdout.write(`hostile-auth: ${attempts} hostile attempts, ${breaches.length} got through\n`);
  expect(breaches).toEqual([]);
  expect(attempts).toBeGreaterThan(50);
});

const get = (gw: TestGateway, path: string, headers: Record<string, string> = {}, transport: Transport = "tcp") => gw.http(transport, path, { headers });
const upgrade = (gw: TestGateway, path: string, headers: Record<string, string> = {}, transport: Transport = "tcp") =>
  gw.http(transport, path, { headers: { ...UPGRADE, ...headers } });

/** Opens a real WebSocket with extra headers; resolves with the ready frame or rejects. */
async function openWith(url: string, headers: Record<string, string>): Promise<Frame> {
  const ws = new WebSocket(url, { headers } as unknown as string[]);
  const ready = await new Promise<Frame>((resolve, reject) => {
    ws.addEventListener("message", (e) => resolve(JSON.parse(String(e.data))));
    ws.addEventListener("error", () => reject(new Error("refused")));
  });
  ws.close();
  return ready;
}

const REBINDING_HOSTS = ["evil.example", "evil.example:8765", "127.0.0.1.nip.io", "localhost.evil.example", "attacker.localhost", "0x7f000001"];
const FORWARDING: Record<string, string>[] = [{ "x-forwarded-for": "203.0.113.9" }, { forwarded: "for=203.0.113.9;proto=https" }, { "x-real-ip": "203.0.113.9" }, { "x-forwarded-for": "127.0.0.1" }];

describe("DNS rebinding: loopback trust needs an allowed Host", () => {
  test("bootstrap, secret-less token issue and token-less upgrades refuse foreign Host names", async () => {
    const gw = await startTestGateway({ token_issue_path: "/issue" });
    for (const host of REBINDING_HOSTS) {
      await attempt(`bootstrap Host ${host}`, await get(gw, "/webui/bootstrap", { host }), 403);
      await attempt(`issue Host ${host}`, await get(gw, "/issue", { host }), 403);
      await attempt(`token-less upgrade Host ${host}`, await upgrade(gw, "/", { host }), 403);
    }
    expect((await get(gw, "/webui/bootstrap")).status).toBe(200);
    expect((await get(gw, "/webui/bootstrap", { host: "localhost:1" })).status).toBe(200);
    expect((await get(gw, "/issue", { host: "[::1]" })).status).toBe(200);
  });

  test("allowed_hosts adds names; a secret makes the Host irrelevant", async () => {
    const named = await startTestGateway({ allowed_hosts: ["box.lan"] });
    expect((await get(named, "/webui/bootstrap", { host: "box.lan:8765" })).status).toBe(200);
    await attempt("bootstrap Host other.lan", await get(named, "/webui/bootstrap", { host: "other.lan" }), 403);
    const secret = await startTestGateway({ token_issue_secret: "s3" });
    expect((await get(secret, "/webui/bootstrap", { host: "gw.example.com", authorization: "Bearer s3" })).status).toBe(200);
    await attempt("bootstrap wrong secret", await get(secret, "/webui/bootstrap", { authorization: "Bearer nope" }), 401);
  });

  test("a token-less connection under a foreign Host may not set workspace controls (it is refused first)", async () => {
    const gw = await startTestGateway();
    await expect(openWith(gw.wsUrl("tcp"), { host: "evil.example" })).rejects.toThrow();
    const ready = await openWith(gw.wsUrl("tcp"), {});
    expect(ready.event).toBe("ready");
  });
});

describe("forwarding headers", () => {
  test("from an untrusted peer they make a loopback request non-local", async () => {
    const gw = await startTestGateway({ token_issue_path: "/issue" });
    for (const headers of FORWARDING) {
      const name = JSON.stringify(headers);
      await attempt(`bootstrap ${name}`, await get(gw, "/webui/bootstrap", headers), 403);
      await attempt(`issue ${name}`, await get(gw, "/issue", headers), 403);
      await attempt(`token-less upgrade ${name}`, await upgrade(gw, "/", headers), 403);
      await attempt(`unix bootstrap ${name}`, await get(gw, "/webui/bootstrap", headers, "unix"), 403);
    }
  });

  test("from a trusted proxy the client address is taken from them: remote clients are not local", async () => {
    const gw = await startTestGateway({ trusted_proxies: ["127.0.0.1", "::1"], allowed_hosts: ["agents.example.com"] });
    const remote: Record<string, string>[] = [
      { "x-forwarded-for": "203.0.113.9" },
      { "x-forwarded-for": "127.0.0.1, 203.0.113.9" },
      { forwarded: 'for="[2001:db8::1]:4711";proto=https' },
      { "x-real-ip": "203.0.113.9" },
      { "x-forwarded-for": "not-an-ip" },
      // A proxy that sets one header passes a client's own other header through: disagreeing headers are not local.
      { forwarded: "for=127.0.0.1", "x-forwarded-for": "203.0.113.9" },
      { "x-real-ip": "203.0.113.9", "x-forwarded-for": "127.0.0.1" },
    ];
    for (const headers of remote) {
      await attempt(`trusted-proxy bootstrap ${JSON.stringify(headers)}`, await get(gw, "/webui/bootstrap", { host: "agents.example.com", ...headers }), 403);
      await attempt(`trusted-proxy upgrade ${JSON.stringify(headers)}`, await upgrade(gw, "/", headers), 403);
    }
    const local = await get(gw, "/webui/bootstrap", { host: "agents.example.com", "x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "https" });
    expect(((await local.json()) as Frame).ws_url).toBe("wss://agents.example.com/");
  });

  test("a proxy on the unix socket is believed only when trusted_proxies names \"unix\"", async () => {
    const gw = await startTestGateway({ trusted_proxies: ["unix"] });
    await attempt("unix proxy, remote client", await get(gw, "/webui/bootstrap", { "x-forwarded-for": "203.0.113.9" }, "unix"), 403);
    await attempt("unix proxy, unparseable client", await get(gw, "/webui/bootstrap", { forwarded: "for=unknown" }, "unix"), 403);
    expect((await get(gw, "/webui/bootstrap", { "x-forwarded-for": "127.0.0.1" }, "unix")).status).toBe(200);
    await attempt("unix proxy, rebinding Host", await get(gw, "/webui/bootstrap", { "x-forwarded-for": "127.0.0.1", host: "evil.example" }, "unix"), 403);
    await attempt("TCP peer not in trusted_proxies", await get(gw, "/webui/bootstrap", { "x-forwarded-for": "127.0.0.1" }), 403);
  });

  test("X-Forwarded-Proto alone from an untrusted peer is not believed", async () => {
    const gw = await startTestGateway();
    const res = await get(gw, "/webui/bootstrap", { host: "localhost", "x-forwarded-proto": "https" });
    expect(((await res.json()) as Frame).ws_url).toBe("ws://localhost/");
  });
});

describe("Origin policy", () => {
  test("a foreign Origin is refused before the upgrade and on credentialed routes; own and allowed origins pass", async () => {
    const gw = await startTestGateway({ token: "t", allowed_origins: ["https://*.trusted.example"], token_issue_path: "/issue" });
    const port = gw.listeners.find((l) => l.transport === "tcp")!.server.port!;
    for (const origin of ["https://evil.example", "null", `http://127.0.0.1:${port + 1}`, "https://trusted.example.evil.example", "http://x.trusted.example"]) {
      await attempt(`upgrade Origin ${origin}`, await upgrade(gw, "/?token=t", { origin }), 403);
      await attempt(`API Origin ${origin}`, await get(gw, "/api/sessions", { origin, authorization: "Bearer t" }), 403);
      await attempt(`bootstrap Origin ${origin}`, await get(gw, "/webui/bootstrap", { origin, authorization: "Bearer t" }), 403);
      await attempt(`issue Origin ${origin}`, await get(gw, "/issue", { origin, authorization: "Bearer t" }), 403);
    }
    expect((await get(gw, "/api/sessions", { origin: `http://127.0.0.1:${port}`, authorization: "Bearer t" })).status).toBe(200);
    expect((await get(gw, "/api/sessions", { origin: "https://app.trusted.example", authorization: "Bearer t" })).status).toBe(200);
    expect((await get(gw, "/api/sessions", { authorization: "Bearer t" })).status).toBe(200);
    expect((await openWith(gw.wsUrl("tcp", { token: "t" }), { origin: "https://APP.trusted.example" })).event).toBe("ready");
  });

  test("token-less mode: the issue's attack (foreign Origin opens a chat with full access) is refused", async () => {
    const gw = await startTestGateway();
    await attempt("token-less foreign Origin upgrade", await upgrade(gw, "/", { origin: "https://evil.example" }), 403);
    await expect(openWith(gw.wsUrl("tcp"), { origin: "https://evil.example" })).rejects.toThrow();
  });
});

describe("tokens", () => {
  test("issued tokens are single-use: a reused one is a JSON 401", async () => {
    const gw = await startTestGateway({ websocket_requires_token: true });
    const { token } = (await (await get(gw, "/webui/bootstrap")).json()) as { token: string };
    expect((await openWith(gw.wsUrl("tcp", { token }), {})).event).toBe("ready");
    await attempt("reused issued token", await upgrade(gw, `/?token=${token}`), 401);
    await attempt("made-up nbwt token", await upgrade(gw, "/?token=nbwt_made-up"), 401);
    await attempt("no token", await upgrade(gw, "/"), 401);
  });

  test("forged, expired and incomplete JWTs are refused on the upgrade and the API", async () => {
    const gw = await startTestGateway({ websocket_requires_token: true, jwt_secret: JWT_SECRET });
    const exp = Math.floor(Date.now() / 1000) + 600;
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const good = await sign({ sub: "alice", exp }, JWT_SECRET, "HS256");
    const forged: [string, string][] = [
      ["alg none", `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "alice", exp })}.`],
      ["alg none signed", `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "alice", exp })}.${good.split(".")[2]}`],
      ["wrong key", await sign({ sub: "alice", exp }, `${JWT_SECRET}-other`, "HS256")],
      ["HS512", await sign({ sub: "alice", exp }, JWT_SECRET, "HS512")],
      ["expired", await sign({ sub: "alice", exp: exp - 1200 }, JWT_SECRET, "HS256")],
      ["no sub", await sign({ exp }, JWT_SECRET, "HS256")],
      ["empty sub", await sign({ sub: "", exp }, JWT_SECRET, "HS256")],
      ["no exp", await sign({ sub: "alice" }, JWT_SECRET, "HS256")],
      ["payload swapped", `${good.split(".")[0]}.${b64({ sub: "root", exp })}.${good.split(".")[2]}`],
      ["not before later", await sign({ sub: "alice", exp, nbf: exp - 60 }, JWT_SECRET, "HS256")],
    ];
    for (const [name, jwt] of forged) {
      await attempt(`upgrade JWT ${name}`, await upgrade(gw, `/?token=${encodeURIComponent(jwt)}`), 401);
      await attempt(`API JWT ${name}`, await get(gw, "/api/sessions", { authorization: `Bearer ${jwt}` }), 401);
    }
    expect((await get(gw, "/api/sessions", { authorization: `Bearer ${good}` })).status).toBe(200);
  });

  test("a JWT's sub is the client identity: allow_from checks it and the chat sees it", async () => {
    const gw = await startTestGateway({ websocket_requires_token: true, jwt_secret: JWT_SECRET, allow_from: ["alice"] });
    const exp = Math.floor(Date.now() / 1000) + 600;
    const mallory = await sign({ sub: "mallory", exp }, JWT_SECRET, "HS256");
    await attempt("sub mallory claiming client_id alice", await upgrade(gw, `/?client_id=alice&token=${mallory}`), 403);
    const alice = await sign({ sub: "alice", exp }, JWT_SECRET, "HS256");
    const ready = await openWith(gw.wsUrl("tcp", { client_id: "mallory", token: alice }), {});
    expect(ready.client_id).toBe("alice");
  });

  test("the client token does not open the agent path; API calls need a credential", async () => {
    const gw = await startTestGateway({ token: "client-t", agents: { remote: { type: "ws" } }, agent_token: "agent-t" });
    for (const headers of [{}, { authorization: "Bearer client-t" }, { authorization: "Bearer agent-tx" }] as Record<string, string>[]) {
      await attempt(`agent path ${JSON.stringify(headers)}`, await upgrade(gw, "/agent", headers), 401);
    }
    await attempt("agent path ?token=client", await upgrade(gw, "/agent?token=client-t"), 401);
    for (const path of ["/api/sessions", "/api/sessions/websocket:x/messages", "/api/chats/x/stop"]) {
      await attempt(`API without credential ${path}`, await gw.http("tcp", path, { method: path.endsWith("stop") ? "POST" : "GET" }), 401);
    }
    await attempt("upload without credential", await gw.http("tcp", "/api/media", { method: "POST", body: "x", headers: { "content-type": "image/png" } }), 401);
    await attempt("agent token as API credential", await get(gw, "/api/sessions", { authorization: "Bearer agent-t" }), 401);
  });
});

describe("rate limits", () => {
  test("bootstrap, token issue, uploads and the API answer 429 with Retry-After once the bucket is empty", async () => {
    const gw = await startTestGateway({ token: "t", token_issue_path: "/issue", rate_limit_auth_per_min: 3, rate_limit_api_per_min: 4, rate_limit_upload_per_min: 2 });
    const auth = { authorization: "Bearer t" };
    const cases: [string, () => Promise<Response>, number][] = [
      ["bootstrap", () => get(gw, "/webui/bootstrap", auth), 3],
      ["issue", () => get(gw, "/issue", auth), 0],
      ["API", () => get(gw, "/api/sessions", auth), 4],
      ["upload", () => gw.http("tcp", "/api/media", { method: "POST", body: "x", headers: { ...auth, "content-type": "text/plain" } }), 2],
    ];
    for (const [name, call, allowed] of cases) {
      for (let i = 0; i < allowed; i++) expect((await call()).status).not.toBe(429);
      const limited = await call();
      expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      await attempt(`${name} over its rate limit`, limited, 429);
    }
    expect((await get(gw, "/api/sessions", auth, "unix")).status).toBe(200);
  });
});
