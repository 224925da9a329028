/**
 * Existing nanobot WebUI builds run unchanged: a built single-page app served
 * from `webui_dir` (index fallback, assets, no traversal), and the bootstrap
 * token of a local browser accepted on the sessions API for its lifetime.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isTurnEnd, startTestGateway, TestClient, type TestGateway, tempDir } from "./helpers.ts";

const INDEX = "<!doctype html><title>fixture spa</title><script type=module src=/assets/app-Dx3k9QaZ.js></script>";
const ASSET = "console.log('fixture');";

/** A small SPA build of our own, with a secret beside it that must never be served. */
function spaFixture(): string {
  const outside = tempDir();
  writeFileSync(join(outside, "secret.txt"), "top secret");
  const dist = join(outside, "dist");
  mkdirSync(join(dist, "assets"), { recursive: true });
  writeFileSync(join(dist, "index.html"), INDEX);
  writeFileSync(join(dist, "assets", "app-Dx3k9QaZ.js"), ASSET);
  writeFileSync(join(dist, "favicon.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>");
  symlinkSync(join(outside, "secret.txt"), join(dist, "assets", "leak.txt"));
  return dist;
}

/** A GET written byte for byte on a TCP socket: fetch's URL parser would fold `..` and `%2e%2e` before sending. */
async function rawGet(gw: TestGateway, path: string): Promise<{ status: number; body: string }> {
  const port = gw.listeners.find((l) => l.transport === "tcp")!.server.port!;
  let response = "";
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: { data: (_s, chunk) => void (response += chunk.toString()), close: () => resolve(), error: () => resolve() },
  });
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  await Promise.race([closed, Bun.sleep(5_000)]);
  socket.end();
  return { status: Number(response.split(" ")[1]), body: response };
}

describe("webui_dir", () => {
  test("serves the app, falls back to index.html for page paths, caches hashed assets, refuses traversal", async () => {
    const gw = await startTestGateway({ webui_dir: spaFixture() });
    const index = await gw.http("tcp", "/");
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toStartWith("text/html");
    expect(index.headers.get("cache-control")).toBe("no-cache");
    expect(index.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(await index.text()).toBe(INDEX);

    const route = await gw.http("unix", "/sessions/websocket%3Aabc");
    expect(route.status).toBe(200);
    expect(await route.text()).toBe(INDEX);

    const asset = await gw.http("tcp", "/assets/app-Dx3k9QaZ.js");
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toContain("javascript");
    expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(await asset.text()).toBe(ASSET);
    expect((await gw.http("tcp", "/favicon.svg")).headers.get("content-type")).toStartWith("image/svg+xml");
    const head = await gw.http("tcp", "/assets/app-Dx3k9QaZ.js", { method: "HEAD" });
    expect([head.status, await head.text()]).toEqual([200, ""]);

    // A directory is never listed; a missing asset is a JSON 404, not the index.
    expect(await (await gw.http("tcp", "/assets")).text()).toBe(INDEX);
    const missing = await gw.http("tcp", "/assets/gone-12345678.js");
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { reason: string }).reason).toBe("no such file");

    // Traversal, encoded or through a symlink, never reads outside the folder. Dot segments
    // the URL parser folds ("/%2e%2e/x" is "/x") arrive harmless; the rest are refused.
    const traversals: [string, number][] = [
      ["/../secret.txt", 404],
      ["/%2e%2e/secret.txt", 404],
      ["/assets/%2e%2e/%2e%2e/secret.txt", 404],
      ["/..%2fsecret.txt", 403],
      ["/assets/..%2f..%2fsecret.txt", 403],
      ["/assets/..%5c..%5csecret.txt", 403],
      ["/x%00.html", 403],
    ];
    for (const [path, status] of traversals) {
      const res = await rawGet(gw, path);
      expect([path, res.status]).toEqual([path, status]);
      expect(res.body).not.toContain("top secret");
    }
    const viaLink = await gw.http("tcp", "/assets/leak.txt");
    expect(viaLink.status).toBe(404);
    expect(await viaLink.text()).not.toContain("top secret");

    // API misses stay JSON, never the SPA.
    const api = await gw.http("tcp", "/api/nope");
    expect([api.status, await api.json()]).toEqual([404, { error: "API route not found", reason: "no API route has this method and path" }]);
  });

  test("without webui_dir, / serves the built-in chat page under a strict CSP, its assets hashed and gzipped; the WebSocket still upgrades on /", async () => {
    const gw = await startTestGateway();
    const page = await gw.http("tcp", "/");
    expect(page.status).toBe(200);
    expect(page.headers.get("cache-control")).toBe("no-cache");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'; script-src 'self'; style-src 'self';");
    expect(csp).not.toContain("unsafe");
    const html = await page.text();
    // The shell paints on its own: nothing in <head> waits for a script, which comes last in <body> as a (deferred) module.
    expect(html.slice(0, html.indexOf("</head>"))).not.toContain("<script");
    expect(html).toMatch(/<script type="module" src="\/_ui\/app\.[a-z0-9]+\.js"><\/script>\n<\/body>/);
    // Revalidated on each load: a matching ETag answers 304 with no body.
    const etag = page.headers.get("etag") ?? "";
    expect(etag).toStartWith('W/"');
    const revalidated = await gw.http("tcp", "/", { headers: { "if-none-match": etag } });
    expect([revalidated.status, await revalidated.text()]).toEqual([304, ""]);
    const assets = [...html.matchAll(/(?:src|href)="(\/_ui\/app\.[a-z0-9]+\.(?:js|css))"/g)].map((m) => m[1] ?? "");
    expect(assets).toHaveLength(2);
    let gzipBytes = 0;
    for (const path of assets) {
      const res = await gw.http("tcp", path, { headers: { "accept-encoding": "gzip" }, decompress: false } as RequestInit);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-encoding")).toBe("gzip");
      expect(res.headers.get("cache-control")).toContain("immutable");
      expect(res.headers.get("content-type")).toContain(path.endsWith(".js") ? "text/javascript" : "text/css");
      const body = await res.arrayBuffer();
      expect(res.headers.get("content-length")).toBe(String(body.byteLength));
      gzipBytes += body.byteLength;
    }
    // Issue #15's budget for the page: its script and stylesheet together under 60 kB gzipped.
    console.log(`built-in page: JS + CSS ${gzipBytes} B gzipped`);
    expect(gzipBytes).toBeLessThan(60_000);
    const head = await gw.http("tcp", "/", { method: "HEAD", headers: { "accept-encoding": "identity" } });
    expect(head.headers.get("content-length")).toBe(String(new TextEncoder().encode(html).length));
    expect((await gw.http("tcp", "/_ui/app.0.js")).status).toBe(404);
    expect((await gw.http("unix", "/")).status).toBe(200);
    expect((await TestClient.ready(gw.wsUrl("tcp"))).ready.event).toBe("ready");
  });

  test("check-config refuses a webui_dir without index.html", async () => {
    await expect(startTestGateway({ webui_dir: tempDir() })).rejects.toThrow("webui_dir must contain index.html");
  });
});

describe("the bootstrap token on the sessions API", () => {
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

  test("a local browser's token works on /api/sessions* and /api/media until it expires, and once on the WebSocket", async () => {
    const gw = await startTestGateway({ websocket_requires_token: true, token_ttl_s: 2 });
    const boot = (await (await gw.http("tcp", "/webui/bootstrap")).json()) as { token: string };
    expect((await gw.http("tcp", "/api/sessions", bearer(boot.token))).status).toBe(200);
    expect((await TestClient.ready(gw.wsUrl("tcp", { token: boot.token }))).ready.event).toBe("ready");
    // Used on the WebSocket, it is still single-use there, and still good for REST.
    await expect(TestClient.open(gw.wsUrl("tcp", { token: boot.token }))).rejects.toThrow();
    expect((await gw.http("unix", "/api/sessions", bearer(boot.token))).status).toBe(200);
    const upload = await gw.http("tcp", "/api/media", { method: "POST", headers: { authorization: `Bearer ${boot.token}`, "content-type": "image/png" }, body: "nope" });
    expect(upload.status).not.toBe(401);
    await Bun.sleep(2_100);
    const expired = await gw.http("tcp", "/api/sessions", bearer(boot.token));
    expect(expired.status).toBe(401);
  });

  test("tokens from the token-issue route, and bootstrap tokens with the option off, stay WebSocket-only", async () => {
    const gw = await startTestGateway({ websocket_requires_token: true, token_issue_path: "/auth/token", token_issue_secret: "s3", bootstrap_token_api_access: false });
    const issued = (await (await gw.http("tcp", "/auth/token", bearer("s3"))).json()) as { token: string };
    expect((await gw.http("tcp", "/api/sessions", bearer(issued.token))).status).toBe(401);
    const boot = (await (await gw.http("tcp", "/webui/bootstrap", bearer("s3"))).json()) as { token: string; api_token: string };
    expect((await gw.http("tcp", "/api/sessions", bearer(boot.token))).status).toBe(401);
    expect((await gw.http("tcp", "/api/sessions", bearer(boot.api_token))).status).toBe(200);
  });
});

describe("webui-thread while a turn runs", () => {
  test("stops at the running turn's user message and marks the turn; the live stream carries the whole reply", async () => {
    const gw = await startTestGateway({ echo_chunk_size: 4, echo_delay_ms: 5 });
    const boot = (await (await gw.http("tcp", "/webui/bootstrap")).json()) as { token: string };
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    const content = "a reply that streams for a while ".repeat(4);
    client.send({ type: "message", chat_id: ready.chat_id, content });
    const early = await client.until((f) => f.event === "delta");
    const user = early.find((f) => f.event === "user")!;

    const thread = (await (await gw.http("tcp", `/api/sessions/websocket%3A${ready.chat_id}/webui-thread`, { headers: { authorization: `Bearer ${boot.token}` } })).json()) as {
      messages: { role: string; content: string }[];
      running?: { since_seq: number; turn_id: string };
    };
    expect(thread.messages.map((m) => m.role)).toEqual(["user"]);
    expect(thread.messages[0]!.content).toBe(content);
    expect(thread.running?.since_seq).toBe(user.seq);

    const rest = await client.until(isTurnEnd, 20_000);
    const streamed = [...early, ...rest].filter((f) => f.event === "delta").map((f) => f.text).join("");
    expect(streamed).toBe(content);
    expect(thread.running?.turn_id).toBe(rest.find((f) => f.event === "turn_end")!.turn_id);

    const after = (await (await gw.http("tcp", `/api/sessions/websocket%3A${ready.chat_id}/webui-thread`, { headers: { authorization: `Bearer ${boot.token}` } })).json()) as {
      messages: { role: string; content: string }[];
      running?: unknown;
    };
    expect(after.running).toBeUndefined();
    expect(after.messages.map((m) => [m.role, m.content])).toEqual([["user", content], ["assistant", content]]);
  });
});
