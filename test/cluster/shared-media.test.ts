/**
 * Media across nodes through a shared directory (cluster_media_dir): two
 * gateway processes on one redis-server and one temp media directory (with its
 * signing secret) serve each other's signed URLs, for uploads, for media an
 * agent published and for a message forwarded to the writer; a forged path,
 * a tampered or expired signature is refused on either; and the node taking a
 * chat over from a dead writer runs its queued message with its media.
 */
import { expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, renameSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../../src/log.ts";
import { MediaLibrary } from "../../src/media/library.ts";
import { loadOrCreateSecret, MediaSigner } from "../../src/media/signing.ts";
import { openDatabase } from "../../src/store/db.ts";
import { BUN, type Frame, isTurnEnd, PY_AGENT, REPO_ROOT, spawnServe, startTestGateway, TestClient, tempDir } from "../helpers.ts";
import { attachedClient } from "./clients.ts";
import { startRedis } from "./redis-server.ts";

const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==", "base64");
const UPLOADED = Buffer.concat([PNG, Buffer.from("an uploaded file")]);
const PUBLISHED = Buffer.concat([PNG, Buffer.from("a file the agent published")]);

interface Node {
  proc: ReturnType<typeof Bun.spawn>;
  ws: string;
  http(path: string, init?: RequestInit): Promise<Response>;
}

/** Two gateway processes sharing one Redis and one media directory; their agent is the Python fixture, allowed to publish files of `workspace`. */
async function twoNodes() {
  const redis = await startRedis();
  const shared = tempDir("agentgate-shared-media-");
  const workspace = tempDir("agentgate-workspace-");
  writeFileSync(join(workspace, "chart.png"), PUBLISHED);
  const start = async (): Promise<Node> => {
    const cwd = tempDir("agentgate-node-");
    const sock = join(cwd, "gw.sock");
    const config = {
      cluster_redis_url: redis.url, cluster_media_dir: shared, cluster_lease_ms: 1000, token: "t", websocket_requires_token: false,
      tcp_enabled: false, unix_socket_path: sock, data_dir: join(cwd, "data"), log_level: "error", media_allowed_roots: [workspace],
      agent: "py", agents: { py: { type: "stdio", command: ["python3", PY_AGENT, "py"] } }, agent_cancel_grace_ms: 300,
    };
    writeFileSync(join(cwd, "config.json"), JSON.stringify(config));
    const { proc } = await spawnServe([BUN, join(REPO_ROOT, "src/main.ts"), "serve", "--config=config.json"], cwd);
    const http = (path: string, init: RequestInit = {}) => fetch(`http://localhost${path}`, { ...init, unix: sock });
    return { proc, ws: `ws+unix://${sock}:/?token=t`, http };
  };
  const [a, b] = await Promise.all([start(), start()]);
  return { a: a!, b: b!, shared, workspace };
}

async function upload(node: Node, bytes: Buffer, name: string): Promise<{ media_id: string; url: string }> {
  const res = await node.http(`/api/media?name=${name}`, { method: "POST", body: bytes, headers: { authorization: "Bearer t", "content-type": "image/png" } });
  expect(res.status).toBe(200);
  return (await res.json()) as { media_id: string; url: string };
}

const bytesAt = async (node: Node, url: string) => {
  const res = await node.http(url);
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
};

const payloadPath = (url: string) => Buffer.from(url.split("/").at(-1)!, "base64url").toString("utf8").replace(/^\d+\./, "");

test("a signed media URL issued on one gateway is served by the other (uploads, agent media, forwarded media); forged, tampered and expired ones are refused", async () => {
  const { a, b, shared, workspace } = await twoNodes();

  // An upload on a, fetched on b.
  const up = await upload(a, UPLOADED, "up.png");
  expect(await bytesAt(b, up.url)).toEqual({ status: 200, bytes: UPLOADED });

  // A tampered signature, an expired URL and a path outside the media root (both signed with the shared secret) are refused on b.
  const [sig, payload] = up.url.split("/").slice(-2) as [string, string];
  const tampered = up.url.replace(sig, (sig[0] === "A" ? "B" : "A") + sig.slice(1));
  expect((await b.http(tampered)).status).toBe(401);
  const secret = readFileSync(join(shared, "media-secret"));
  const past = new MediaSigner(secret, 60, () => Date.now() - 3_600_000);
  expect((await b.http(past.sign(payloadPath(up.url)))).status).toBe(410);
  const now = new MediaSigner(secret, 60);
  for (const forged of ["../media-secret", "/etc/passwd", "uploads/../../media-secret"]) expect((await b.http(now.sign(forged))).status).toBe(404);
  expect(payload.length).toBeGreaterThan(0);

  // Media an agent published in a chat a writes, fetched on b.
  const chatId = "shared-media";
  const onA = await attachedClient(a.ws, chatId);
  const onB = await attachedClient(b.ws, chatId);
  onA.send({ type: "message", chat_id: chatId, content: `media ${join(workspace, "chart.png")}` });
  const turn = await onA.until((f) => f.chat_id === chatId && isTurnEnd(f));
  const files = turn.find((f) => f.event === "message" && f.text === "files") as Frame;
  const published = (files.media_urls as { url: string }[] | undefined)?.[0]?.url ?? "";
  expect(await bytesAt(b, published)).toEqual({ status: 200, bytes: PUBLISHED });

  // A message with inline media sent to b is forwarded to a (the writer), which stores it: its URL is served by b.
  onB.send({ type: "message", chat_id: chatId, content: "look", media: [{ data_url: `data:image/png;base64,${PNG.toString("base64")}`, name: "inline.png" }] });
  const user = (await onB.until((f) => f.chat_id === chatId && f.event === "user" && f.text === "look")).at(-1)!;
  const forwarded = (user.media_urls as { url: string; name: string }[])[0]!;
  expect(forwarded.name).toBe("inline.png");
  expect(await bytesAt(b, forwarded.url)).toEqual({ status: 200, bytes: PNG });
  await onB.until((f) => f.chat_id === chatId && isTurnEnd(f));
}, 30_000);

test("a message queued behind a dead writer's turn keeps its uploaded media: the node taking the chat over runs it with the file", async () => {
  const { a, b } = await twoNodes();
  const chatId = "shared-media-takeover";
  const watcher = await attachedClient(b.ws, chatId);
  const writer = await attachedClient(a.ws, chatId);
  writer.send({ type: "message", chat_id: chatId, content: "slow" });
  await watcher.until((f) => f.chat_id === chatId && f.event === "delta");
  const up = await upload(a, UPLOADED, "queued.png");
  // The fixture reports the media its turn got (and tries to publish a file that does not exist: dropped).
  writer.send({ type: "message", chat_id: chatId, content: "media missing.png", media_ids: [up.media_id] });
  // Its user event is in Redis (mirrored by b) before the writer dies.
  await watcher.until((f) => f.chat_id === chatId && f.event === "user" && f.text === "media missing.png");
  a.proc.kill("SIGKILL");
  await a.proc.exited;

  // b takes over, closes the interrupted turn and runs the queued message: the agent reports the file it got.
  const frames = await watcher.until((f) => f.chat_id === chatId && f.event === "message" && f.kind === "progress" && String(f.text).startsWith("["), 20_000);
  expect(frames).toContainEqual(expect.objectContaining({ event: "turn_end", status: "interrupted" }));
  const received = JSON.parse(frames.at(-1)!.text as string) as { name: string; mime: string; exists: boolean; url: string }[];
  expect(received.map(({ name, mime, exists }) => ({ name, mime, exists }))).toEqual([{ name: "queued.png", mime: "image/png", exists: true }]);
  expect(await bytesAt(b, received[0]!.url)).toEqual({ status: 200, bytes: UPLOADED });
}, 40_000);

test("a node's sweep of a shared media directory keeps files other nodes wrote (no row here) and removes only temp files left longer than the grace", async () => {
  const shared = tempDir("agentgate-shared-media-");
  const secretFile = join(shared, "media-secret");
  const signer = new MediaSigner(loadOrCreateSecret(secretFile), 60);
  // A second node starting on the directory uses the secret already there.
  expect(loadOrCreateSecret(secretFile)).toEqual(readFileSync(secretFile));
  const node = () => new MediaLibrary(join(shared, "media"), openDatabase(join(tempDir(), "agentgate.db"), 1000), signer, createLogger("error"), undefined, 60_000);
  const [a, b] = [node(), node()];
  const temp = a.tempPath();
  writeFileSync(temp, UPLOADED);
  const ref = await a.adoptUpload(temp, "image/png", "up.png", UPLOADED.length, "0".repeat(64));
  const [deadUpload, liveUpload] = [b.tempPath(), a.tempPath()];
  for (const file of [deadUpload, liveUpload]) writeFileSync(file, PNG);
  const longAgo = new Date(Date.now() - 120_000);
  utimesSync(deadUpload, longAgo, longAgo);
  expect(await b.sweep(Date.now() + 1000)).toEqual({ files: 1, rows: 0 });
  expect([existsSync(join(a.root, ref.relPath)), existsSync(deadUpload), existsSync(liveUpload)]).toEqual([true, false, true]);
  expect(b.resolveInside(ref.relPath)).toBe(join(a.root, ref.relPath));
});

test("a media root that holds none of the files its rows name (a shared directory not mounted) is not swept: no row and no file is deleted, and it is logged", async () => {
  const db = openDatabase(join(tempDir(), "agentgate.db"), 1000);
  const signer = new MediaSigner(loadOrCreateSecret(join(tempDir(), "media-secret")), 60);
  const lines: string[] = [];
  const log = createLogger("error", "text", (line) => lines.push(line));
  const mounted = new MediaLibrary(join(tempDir("agentgate-shared-media-"), "media"), db, signer, log, undefined, 60_000);
  const temp = mounted.tempPath();
  writeFileSync(temp, UPLOADED);
  const ref = await mounted.adoptUpload(temp, "image/png", "up.png", UPLOADED.length, "0".repeat(64));
  // The same store on an empty directory where the mount should be.
  const unmounted = new MediaLibrary(join(tempDir("agentgate-mount-point-"), "media"), db, signer, log, undefined, 60_000);
  expect(await unmounted.sweep(Date.now() + 1000)).toEqual({ files: 0, rows: 0 });
  expect(mounted.uploads([ref.id], "any-chat")).toEqual([ref]);
  expect(lines.join("\n")).toContain("not mounted");
});

test("a gateway whose cluster_media_dir is missing, or looks unmounted (no signing secret though its store has media rows), does not start, and nothing is created there; unmounted while serving, it is not ready", async () => {
  const redis = await startRedis();
  const missing = join(tempDir(), "not-mounted");
  await expect(startTestGateway({ cluster_redis_url: redis.url, cluster_media_dir: missing })).rejects.toThrow(/cluster_media_dir/);
  expect(existsSync(missing)).toBe(false);

  // A node that stored media in the shared directory, restarted on an empty mount point.
  const shared = tempDir("agentgate-shared-media-");
  const first = await startTestGateway({ cluster_redis_url: redis.url, cluster_media_dir: shared, token: "t" });
  const res = await first.http("tcp", "/api/media?name=up.png", { method: "POST", body: UPLOADED, headers: { authorization: "Bearer t", "content-type": "image/png" } });
  expect(res.status).toBe(200);
  // Unmounted while serving (the secret gone from view): not ready, so a load balancer stops sending it clients.
  expect((await first.http("tcp", "/ready")).status).toBe(200);
  renameSync(join(shared, "media-secret"), join(shared, "media-secret.away"));
  const ready = await first.http("tcp", "/ready");
  expect(ready.status).toBe(503);
  expect(((await ready.json()) as { checks: Record<string, string> }).checks.media).toContain("not mounted");
  renameSync(join(shared, "media-secret.away"), join(shared, "media-secret"));
  await first.stop();
  const mountPoint = tempDir("agentgate-mount-point-");
  await expect(startTestGateway({ cluster_redis_url: redis.url, cluster_media_dir: mountPoint, data_dir: join(first.dir, "data") })).rejects.toThrow(/cluster_media_dir.*not mounted/);
  expect(readdirSync(mountPoint)).toEqual([]);
});
