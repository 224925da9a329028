/**
 * Single-use tokens across gateways: two real gateway processes share one real
 * redis-server; a token issued on either is accepted exactly once on any.
 */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import { join } from "node:path";
import { BUN, onCleanup, REPO_ROOT, spawnServe, startTestGateway, tempDir } from "../helpers.ts";
import { probeFreePort, startRedis } from "./redis-server.ts";

const MAIN = join(REPO_ROOT, "src/main.ts");
const TOKENS = 20;

/** A gateway process on a unix socket in its own data dir, issuing tokens at /token to local peers. */
async function gatewayNode(redisUrl: string) {
  const cwd = tempDir("agentgate-node-");
  const sock = join(cwd, "gw.sock");
  const { banner } = await spawnServe([BUN, MAIN, "serve", "--tcp-enabled=false", `--unix-socket-path=${sock}`, "--data-dir=data", "--token-issue-path=/token", "--log-level=error", `--cluster-redis-url=${redisUrl}`], cwd);
  return {
    /** The token the start-up banner printed in its connect hint. */
    printedToken: /\?token=([^\s]+)/.exec(banner)?.[1] ?? "",
    async issue(): Promise<string> {
      const res = await fetch("http://localhost/token", { unix: sock });
      expect(res.status).toBe(200);
      return ((await res.json()) as { token: string }).token;
    },
    /** GET /webui/bootstrap: a single-use WebSocket token and a reusable API token. */
    async bootstrap(): Promise<{ token: string; api_token: string }> {
      const res = await fetch("http://localhost/webui/bootstrap", { unix: sock });
      expect(res.status).toBe(200);
      return (await res.json()) as { token: string; api_token: string };
    },
    /** The status of GET /api/sessions with `token` as its Bearer. */
    async sessionsStatus(token: string): Promise<number> {
      const res = await fetch("http://localhost/api/sessions", { unix: sock, headers: { authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      return res.status;
    },
    /** Whether a WebSocket handshake with this token is accepted. */
    handshake(token: string): Promise<boolean> {
      return new Promise((resolve) => {
        const ws = new WebSocket(`ws+unix://${sock}:/?token=${encodeURIComponent(token)}`);
        const timer = setTimeout(() => {
          ws.close();
          resolve(false);
        }, 10_000);
        ws.onopen = () => {
          clearTimeout(timer);
          ws.close();
          resolve(true);
        };
        ws.onerror = ws.onclose = () => {
          clearTimeout(timer);
          resolve(false);
        };
      });
    },
  };
}

test("a token issued on one node, presented to two nodes at once, is accepted exactly once", async () => {
  const redis = await startRedis();
  const [a, b] = await Promise.all([gatewayNode(redis.url), gatewayNode(redis.url)]);
  const tokens = await Promise.all(Array.from({ length: TOKENS }, (_, i) => (i % 2 === 0 ? a : b).issue()));
  // Every other token is presented to b first, so neither node always starts ahead.
  const outcomes = await Promise.all(tokens.map((t, i) => Promise.all(i % 2 === 0 ? [a.handshake(t), b.handshake(t)] : [b.handshake(t), a.handshake(t)])));
  for (const pair of outcomes) expect(pair.filter(Boolean).length).toBe(1);
  // Used up everywhere.
  expect(await a.handshake(tokens[0]!)).toBe(false);
  expect(await b.handshake(tokens[1]!)).toBe(false);
});

test("a token issued on one node is accepted on another, once", async () => {
  const redis = await startRedis();
  const [a, b] = await Promise.all([gatewayNode(redis.url), gatewayNode(redis.url)]);
  const token = await a.issue();
  expect(await b.handshake(token)).toBe(true);
  expect(await a.handshake(token)).toBe(false);
  expect(await b.handshake("nbwt_not-issued")).toBe(false);
});

test("the token printed at start is recorded for the cluster: accepted once, on any node", async () => {
  const redis = await startRedis();
  const [a, b] = await Promise.all([gatewayNode(redis.url), gatewayNode(redis.url)]);
  expect(a.printedToken).toStartWith("nbwt_");
  expect(await b.handshake(a.printedToken)).toBe(true);
  expect(await a.handshake(a.printedToken)).toBe(false);
});

test("bootstrap's API token and browser token, issued on one node, open the sessions API on every node until they expire; the browser token's handshake still succeeds once", async () => {
  const redis = await startRedis();
  const [a, b] = await Promise.all([gatewayNode(redis.url), gatewayNode(redis.url)]);
  const { token, api_token } = await a.bootstrap();
  for (const node of [b, a, b]) {
    expect(await node.sessionsStatus(api_token)).toBe(200);
    expect(await node.sessionsStatus(token)).toBe(200);
  }
  expect(await b.sessionsStatus("nbwt_not-issued")).toBe(401);
  const outcomes = await Promise.all([a.handshake(token), b.handshake(token)]);
  expect(outcomes.filter(Boolean).length).toBe(1);
  // Still a REST credential after its single WebSocket use, as on one node.
  expect(await b.sessionsStatus(token)).toBe(200);
});

test("a gateway whose cluster Redis cannot be reached does not start, and says which option (not the URL's password)", async () => {
  const port = probeFreePort();
  await expect(startTestGateway({ cluster_redis_url: `redis://user:hunter2@127.0.0.1:${port}` })).rejects.toThrow(/^cluster_redis_url: cannot connect to Redis(?!.*hunter2)/);
}, 15_000);

test("a token Redis refuses to record is not handed out and does not count against max_outstanding_tokens: 503, then issued once Redis takes writes", async () => {
  const redis = await startRedis();
  const gw = await startTestGateway({ cluster_redis_url: redis.url, token_issue_path: "/token", max_outstanding_tokens: 2 });
  const admin = new RedisClient(redis.url);
  await admin.connect();
  onCleanup(() => admin.close());
  // Writes refused (OOM) while reads still work.
  await admin.send("CONFIG", ["SET", "maxmemory", "1"]);
  for (let i = 0; i < 3; i++) {
    const res = await gw.http("tcp", "/token");
    expect(res.status).toBe(503);
    expect(JSON.stringify(await res.json())).not.toContain("nbwt_");
  }
  await admin.send("CONFIG", ["SET", "maxmemory", "0"]);
  for (let i = 0; i < 2; i++) expect((await gw.http("tcp", "/token")).status).toBe(200);
});
