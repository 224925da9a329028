/**
 * Device tool calls in a cluster behave as on one node: a capable device
 * connected to another node than the chat's writer counts (it gets the request,
 * its answer reaches the agent), none anywhere fails at once, one leaving is
 * waited for the grace, and one on a node killed with kill -9 stops counting
 * once that node's alive key lapses, while one on a node only paused past it
 * counts again once that node runs. Real redis-server, gateways in-process and
 * (for kill -9 and SIGSTOP) a child process.
 */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import { join } from "node:path";
import type { ConfigInput } from "../../src/config.ts";
import { BUN, type Frame, isTurnEnd, onCleanup, REPO_ROOT, spawnServe, startTestGateway, stdioAgentConfig, TestClient, type TestGateway, tempDir } from "../helpers.ts";
import { attachedClient } from "./clients.ts";
import { startRedis } from "./redis-server.ts";

const LEASE_MS = 1000;

/** What the stdio agent streams back: the tool call's outcome it was given. */
const agentSaw = (frames: Frame[]) => JSON.parse(frames.find((f) => f.event === "delta")!.text as string);

function node(redisUrl: string, overrides: Partial<ConfigInput> = {}): Promise<TestGateway> {
  return startTestGateway(stdioAgentConfig({ cluster_redis_url: redisUrl, cluster_lease_ms: LEASE_MS, token: "t", ...overrides }));
}

/** A client of `gw` attached to the chat, declaring `tools`. */
const client = (gw: TestGateway, chatId: string, tools = "") => attachedClient(gw.wsUrl("tcp", { token: "t", ...(tools && { capabilities: tools }) }), chatId);

/** The writer's client asks its agent for a tool call; the turn's frames as it sees them. */
async function toolTurn(onWriter: TestClient, chatId: string, command: string): Promise<Frame[]> {
  onWriter.send({ type: "message", chat_id: chatId, content: command });
  return (await onWriter.until((f) => f.chat_id === chatId && isTurnEnd(f), 20_000)).filter((f) => f.chat_id === chatId);
}

/**
 * Node B as a child process (so it can be killed or paused) with a device of the
 * chat declaring `camera`, once B has recorded it in Redis (bounded wait: B
 * records it as it handles the attach, on a connection of its own).
 */
async function deviceOnChildNode(redisUrl: string, chatId: string) {
  const cwd = tempDir("agentgate-node-");
  const sock = join(cwd, "gw.sock");
  const b = await spawnServe(
    [BUN, join(REPO_ROOT, "src/main.ts"), "serve", "--tcp-enabled=false", `--unix-socket-path=${sock}`, "--data-dir=data", "--websocket-requires-token=false", "--log-level=error", `--cluster-redis-url=${redisUrl}`, `--cluster-lease-ms=${LEASE_MS}`],
    cwd,
  );
  const device = await attachedClient(`ws+unix://${sock}:/?capabilities=camera`, chatId);
  const peek = new RedisClient(redisUrl);
  onCleanup(() => peek.close());
  const devicesKey = `agentgate:{${chatId}}:devices`;
  const fields = async () => Object.keys(await peek.hgetall(devicesKey));
  let recorded: string[] = [];
  for (let i = 0; i < 100 && recorded.length === 0; i++) {
    recorded = await fields();
    if (recorded.length === 0) await Bun.sleep(20);
  }
  expect(recorded).toHaveLength(1);
  const bNode = recorded[0]!.split(" ")[0]!;
  expect(recorded[0]).toBe(`${bNode} camera`);
  return { b, device, peek, devicesKey, fields, recorded, alive: `agentgate:node:${bNode}:alive` };
}

test("the only capable device is on another node than the writer: it gets the request and its answer reaches the agent", async () => {
  const redis = await startRedis();
  const [a, b] = await Promise.all([node(redis.url), node(redis.url)]);
  const chatId = "devices-remote";
  const device = await client(b!, chatId, "camera");
  const onA = await client(a!, chatId);
  onA.send({ type: "message", chat_id: chatId, content: "tool camera 60000" });
  const request = (await device.until((f) => f.chat_id === chatId && f.event === "tool_request")).at(-1)!;
  expect(request).toMatchObject({ tool: "camera" });
  device.send({ type: "tool_result", chat_id: chatId, call_id: request.call_id, ok: true, result: { photo: "from-b.png" } });
  const frames = await onA.until((f) => f.chat_id === chatId && isTurnEnd(f), 20_000);
  expect(agentSaw(frames)).toEqual({ ok: true, result: { photo: "from-b.png" } });
});

test("no capable device on any node: the agent is told no_capable_client at once, not at its deadline", async () => {
  const redis = await startRedis();
  const [a, b] = await Promise.all([node(redis.url), node(redis.url)]);
  const chatId = "devices-none";
  await client(b!, chatId, "gps");
  const onA = await client(a!, chatId);
  expect(agentSaw(await toolTurn(onA, chatId, "tool camera 60000"))).toEqual({ ok: false, error: "no_capable_client" });
});

test("the only capable device, on another node, disconnects: after the grace the agent hears device_disconnected", async () => {
  const redis = await startRedis();
  const [a, b] = await Promise.all([node(redis.url, { tool_disconnect_grace_ms: 200, cluster_device_recheck_ms: 100 }), node(redis.url)]);
  const chatId = "devices-left";
  const device = await client(b!, chatId, "camera");
  const onA = await client(a!, chatId);
  onA.send({ type: "message", chat_id: chatId, content: "tool camera 60000" });
  await device.until((f) => f.chat_id === chatId && f.event === "tool_request");
  device.ws.close();
  const frames = await onA.until((f) => f.chat_id === chatId && isTurnEnd(f), 20_000);
  expect(frames.find((f) => f.event === "tool_result")).toMatchObject({ ok: false, error: "device_disconnected" });
  expect(agentSaw(frames)).toEqual({ ok: false, error: "device_disconnected" });
});

test("a node killed with kill -9 while its capable device is recorded in Redis: once its alive key lapses the device no longer counts", async () => {
  const redis = await startRedis();
  const a = await node(redis.url);
  const chatId = "devices-killed";
  const { b, peek, devicesKey, recorded, alive } = await deviceOnChildNode(redis.url, chatId);
  b.proc.kill("SIGKILL");
  await b.proc.exited;
  // Bounded: the alive key has a TTL of one lease.
  for (let i = 0; i < 100 && (await peek.exists(alive)); i++) await Bun.sleep(LEASE_MS / 10);
  expect(await peek.exists(alive)).toBe(false);
  expect(Object.keys(await peek.hgetall(devicesKey))).toEqual(recorded);
  const onA = await client(a, chatId);
  expect(agentSaw(await toolTurn(onA, chatId, "tool camera 60000"))).toEqual({ ok: false, error: "no_capable_client" });
  // The writer that noticed removed the dead node's entry.
  for (let i = 0; i < 100 && Object.keys(await peek.hgetall(devicesKey)).length > 0; i++) await Bun.sleep(20);
  expect(await peek.hgetall(devicesKey)).toEqual({});
});

test("a node paused past its alive key's TTL, its device fields removed meanwhile: once it runs again its still-connected device counts again", async () => {
  const redis = await startRedis();
  const a = await node(redis.url);
  const chatId = "devices-paused";
  const { b, device, peek, fields, recorded, alive } = await deviceOnChildNode(redis.url, chatId);
  b.proc.kill("SIGSTOP");
  onCleanup(() => b.proc.kill("SIGCONT"));
  for (let i = 0; i < 100 && (await peek.exists(alive)); i++) await Bun.sleep(LEASE_MS / 10);
  // The writer notices the lapsed key: the call fails and B's field is removed.
  const onA = await client(a, chatId);
  expect(agentSaw(await toolTurn(onA, chatId, "tool camera 60000"))).toEqual({ ok: false, error: "no_capable_client" });
  expect(await fields()).toEqual([]);
  b.proc.kill("SIGCONT");
  // Bounded: B's next beat finds its key lapsed and sends its counts again.
  for (let i = 0; i < 100 && (await fields()).length === 0; i++) await Bun.sleep(LEASE_MS / 10);
  expect(await fields()).toEqual(recorded);
  // The device, resumed with B, first gets the failed call's request and result: then the new call.
  await device.until((f) => f.chat_id === chatId && f.event === "tool_result", 20_000);
  onA.send({ type: "message", chat_id: chatId, content: "tool camera 60000" });
  const request = (await device.until((f) => f.chat_id === chatId && f.event === "tool_request", 20_000)).at(-1)!;
  device.send({ type: "tool_result", chat_id: chatId, call_id: request.call_id, ok: true, result: { photo: "after-pause.png" } });
  const frames = await onA.until((f) => f.chat_id === chatId && isTurnEnd(f), 20_000);
  expect(agentSaw(frames.slice(frames.findLastIndex((f) => f.event === "user")))).toEqual({ ok: true, result: { photo: "after-pause.png" } });
});
