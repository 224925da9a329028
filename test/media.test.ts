import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Frame, isTurnEnd, sendTurn, startTestGateway, stdioAgentConfig, TestClient, type TestGateway, tempDir } from "./helpers.ts";

const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==", "base64");
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1]);
const MP4 = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from("ftypisom"), Buffer.alloc(64)]);
const dataUrl = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString("base64")}`;
const png = { data_url: dataUrl("image/png", PNG), name: "shot.png" };

/** Every file under the media root except the temp folder: what must be empty after a refusal. */
function mediaFiles(gw: TestGateway): string[] {
  const root = join(gw.config.data_dir, "media");
  return existsSync(root) ? readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)) : [];
}

/** Signs a payload with the gateway's persisted secret, to forge exact test cases. */
function forge(gw: TestGateway, expiresAt: number, relPath: string): string {
  const secret = readFileSync(join(gw.config.data_dir, "media-secret"));
  const payload = Buffer.from(`${expiresAt}.${relPath}`).toString("base64url");
  return `/api/media/${createHmac("sha256", secret).update(payload).digest().subarray(0, 16).toString("base64url")}/${payload}`;
}

const now = () => Math.floor(Date.now() / 1000);

async function uploadRaw(gw: TestGateway, body: Blob | Uint8Array | ReadableStream, contentType: string) {
  return gw.http("tcp", "/api/media?name=pic.png", { method: "POST", body, headers: { authorization: "Bearer t", "content-type": contentType } });
}

/** A raw HTTP request over TCP, for what fetch will not send (a Content-Length the body does not have). */
async function rawHttp(gw: TestGateway, request: string): Promise<string> {
  const port = gw.listeners.find((l) => l.transport === "tcp")!.server.port;
  let answer = "";
  const done = Promise.withResolvers<string>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port: port!,
    socket: { data: (_s, chunk) => void (answer += chunk.toString()), close: () => done.resolve(answer), error: () => done.resolve(answer) },
  });
  socket.write(request);
  setTimeout(() => socket.end(), 2000);
  return done.promise;
}

describe("inbound data URLs", () => {
  test("an image is stored, shown to clients as a signed URL, never as a path; image-only messages are allowed", async () => {
    const gw = await startTestGateway();
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    client.send({ type: "message", chat_id: ready.chat_id, content: "", media: [png] });
    const frames = await client.until(isTurnEnd);
    const user = frames[0]!;
    expect(user).toMatchObject({ event: "user", text: "", media_urls: [{ name: "shot.png" }] });
    expect(user).not.toHaveProperty("private");
    expect(JSON.stringify(frames)).not.toContain(gw.config.data_dir);
    const res = await gw.http("unix", user.media_urls[0].url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(PNG)).toBe(true);
    expect(mediaFiles(gw)).toHaveLength(1);
  });

  test.each([
    ["too_many_images", Array.from({ length: 5 }, () => png)],
    ["too_many_videos", [{ data_url: dataUrl("video/mp4", MP4) }, { data_url: dataUrl("video/mp4", MP4) }]],
    ["malformed", ["data:image/png;base64,AAAA"]],
    ["malformed", [{ name: "no url" }]],
    ["decode", [{ data_url: "http://evil.example/image.png" }]],
    ["decode", [{ data_url: "data:image/png;base64,not-valid-base64!!!" }]],
    ["decode", [{ data_url: "data:image/png;base64,iVBORw0" }]],
    ["mime", [{ data_url: dataUrl("application/pdf", Buffer.from("%PDF-1.4")) }]],
    ["mime", [{ data_url: dataUrl("image/svg+xml", Buffer.from("<svg/>")) }]],
    ["mime", [{ data_url: dataUrl("image/png", JPEG) }]],
    ["mime", [png, { data_url: dataUrl("application/pdf", Buffer.from("%PDF")) }]],
    ["size", [{ data_url: dataUrl("image/png", Buffer.concat([PNG, Buffer.alloc(2048)])) }]],
  ])("%s: the batch is refused whole, nothing published, no file left", async (reason, media) => {
    const gw = await startTestGateway({ media_max_image_bytes: 2048 });
    const { client, ready } = await TestClient.ready(gw.wsUrl("unix"));
    client.send({ type: "message", chat_id: ready.chat_id, content: "x", media });
    expect(await client.next()).toEqual({ event: "error", detail: "image_rejected", reason, chat_id: ready.chat_id });
    await client.expectQuiet();
    expect(mediaFiles(gw)).toEqual([]);
  });

  test("a frame announcing a huge image never reaches the decoder: the socket closes with 1009", async () => {
    const gw = await startTestGateway({ max_message_bytes: 64 * 1024 });
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    client.send({ type: "message", chat_id: ready.chat_id, content: "", media: [{ data_url: `data:image/png;base64,${"A".repeat(100_000)}` }] });
    expect((await client.closed).code).toBe(1009);
    expect(mediaFiles(gw)).toEqual([]);
  });
});

describe("uploads over HTTP", () => {
  test("raw and multipart uploads are streamed, answered with a URL, and usable by media_ids", async () => {
    const gw = await startTestGateway({ token: "t" });
    const raw = await uploadRaw(gw, PNG, "image/png");
    const uploaded = (await raw.json()) as { media_id: string; url: string; mime: string; size: number };
    expect(uploaded).toMatchObject({ mime: "image/png", size: PNG.length });
    const form = new FormData();
    form.append("note", "ignored field");
    form.append("file", new File([JPEG], "photo.jpg", { type: "image/jpeg" }));
    const multi = (await (await gw.http("tcp", "/api/media", { method: "POST", body: form, headers: { authorization: "Bearer t" } })).json()) as { media_id: string; url: string };
    expect(Buffer.from(await (await gw.http("tcp", multi.url)).arrayBuffer()).equals(JPEG)).toBe(true);
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp", { token: "t" }));
    client.send({ type: "message", chat_id: ready.chat_id, content: "see", media_ids: [uploaded.media_id, multi.media_id] });
    const user = await client.next();
    expect(user.media_urls.map((m: Frame) => m.name)).toEqual(["pic.png", "photo.jpg"]);
    const other = await TestClient.ready(gw.wsUrl("tcp", { token: "t" }));
    other.client.send({ type: "message", chat_id: other.ready.chat_id, content: "mine?", media_ids: [uploaded.media_id] });
    expect(await other.client.next()).toMatchObject({ detail: "image_rejected", reason: "unknown_media" });
  });

  test("uploads need the API credential, a real matching type, and fit the limit; failures leave nothing", async () => {
    const gw = await startTestGateway({ token: "t", media_max_image_bytes: 4096 });
    expect((await gw.http("tcp", "/api/media", { method: "POST", body: PNG, headers: { "content-type": "image/png" } })).status).toBe(401);
    expect((await uploadRaw(gw, JPEG, "image/png")).status).toBe(415);
    expect((await uploadRaw(gw, Buffer.from("<svg/>"), "image/svg+xml")).status).toBe(415);
    expect((await uploadRaw(gw, Buffer.alloc(0), "image/png")).status).toBe(400);
    const announced = await rawHttp(gw, `POST /api/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Type: image/png\r\nContent-Length: ${200 * 1024 * 1024}\r\n\r\n${"A".repeat(64)}`);
    expect(announced).toStartWith("HTTP/1.1 413");
    const chunks = new ReadableStream({
      start(c) {
        c.enqueue(PNG);
        for (let i = 0; i < 8; i++) c.enqueue(new Uint8Array(1024));
        c.close();
      },
    });
    const streamed = await uploadRaw(gw, chunks, "image/png");
    expect([streamed.status, await streamed.json()]).toEqual([413, { error: "image_rejected", reason: "size" }]);
    expect(mediaFiles(gw)).toEqual([]);
    expect((await gw.http("tcp", "/health")).status).toBe(200);
  });

  test("many concurrent uploads all land, each once", async () => {
    const gw = await startTestGateway({ token: "t" });
    const results = await Promise.all(Array.from({ length: 24 }, () => uploadRaw(gw, PNG, "image/png").then((r) => r.json() as Promise<{ media_id: string }>)));
    expect(new Set(results.map((r) => r.media_id)).size).toBe(24);
    expect(mediaFiles(gw)).toHaveLength(24);
  });
});

describe("signed URLs", () => {
  async function stored(gw: TestGateway) {
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    client.send({ type: "message", chat_id: ready.chat_id, content: "", media: [png] });
    const url = (await client.next()).media_urls[0].url as string;
    const rel = Buffer.from(url.split("/").pop()!, "base64url").toString().replace(/^\d+\./, "");
    return { url, rel };
  }

  test("tampered, truncated, expired and bad payloads get their statuses; the process stays up", async () => {
    const gw = await startTestGateway();
    const { url, rel } = await stored(gw);
    const [, , , sig, payload] = url.split("/");
    const status = async (path: string) => (await gw.http("tcp", path)).status;
    expect(await status(url)).toBe(200);
    // Tamper for sure: the first character carries six signature bits (the last one partly padding).
    const tampered = (sig![0] === "A" ? "B" : "A") + sig!.slice(1);
    expect(await status(`/api/media/${tampered}/${payload}`)).toBe(401);
    expect(await status(`/api/media/${sig!.slice(0, 10)}/${payload}`)).toBe(401);
    expect(await status(`/api/media/${sig}/${payload!.slice(0, -4)}`)).toBe(401);
    expect(await status(forge(gw, now() - 1, rel))).toBe(410);
    const secret = readFileSync(join(gw.config.data_dir, "media-secret"));
    const noDot = Buffer.from("nodot").toString("base64url");
    expect(await status(`/api/media/${createHmac("sha256", secret).update(noDot).digest().subarray(0, 16).toString("base64url")}/${noDot}`)).toBe(400);
    expect(await status(`/api/media/${sig}/${payload}/extra`)).toBe(404);
    expect(await status("/health")).toBe(200);
  });

  test("path traversal in every form is 404", async () => {
    const gw = await startTestGateway();
    await stored(gw);
    const root = join(gw.config.data_dir, "media");
    const outside = join(tempDir(), "secret.png");
    writeFileSync(outside, PNG);
    symlinkSync(outside, join(root, "link.png"));
    mkdirSync(join(root, "dir"));
    for (const rel of ["../agentgate.db", "..%2Fagentgate.db", "/etc/passwd", outside, "dir/../../agentgate.db", "link.png", "missing.png", "dir", "a\0b"]) {
      expect([rel, (await gw.http("tcp", forge(gw, now() + 60, rel))).status]).toEqual([rel, 404]);
    }
  });

  test("ranges at every edge, type and cache headers, SVG under a sandbox CSP", async () => {
    const gw = await startTestGateway({ media_url_ttl_s: 120 });
    const { url } = await stored(gw);
    const get = (range?: string) => gw.http("tcp", url, range ? { headers: { range } } : {});
    const size = PNG.length;
    const full = await get();
    expect(full.headers.get("content-type")).toBe("image/png");
    expect(full.headers.get("x-content-type-options")).toBe("nosniff");
    expect(full.headers.get("accept-ranges")).toBe("bytes");
    expect(Number(full.headers.get("cache-control")!.match(/max-age=(\d+)/)![1])).toBeLessThanOrEqual(120);
    /** [Range header, status, Content-Range, body as a [start, end) slice of the file or undefined]. */
    const cases: [string, number, string | null, [number, number]?][] = [
      ["bytes=0-0", 206, `bytes 0-0/${size}`, [0, 1]],
      ["bytes=0-", 206, `bytes 0-${size - 1}/${size}`, [0, size]],
      ["bytes=-1", 206, `bytes ${size - 1}-${size - 1}/${size}`, [size - 1, size]],
      ["bytes=5-100000", 206, `bytes 5-${size - 1}/${size}`, [5, size]],
      ["bytes=-100000", 206, `bytes 0-${size - 1}/${size}`, [0, size]],
      ["bytes=-0", 416, `bytes */${size}`],
      [`bytes=${size}-`, 416, `bytes */${size}`],
      // Malformed or multiple ranges may be ignored (RFC 9110 §14.2): the whole file.
      ["bytes=5-4", 200, null, [0, size]],
      ["bytes=0-1,3-4", 200, null, [0, size]],
      ["items=0-1", 200, null, [0, size]],
    ];
    for (const [range, code, contentRange, slice] of cases) {
      const res = await get(range);
      const body = Buffer.from(await res.arrayBuffer());
      expect([range, res.status, res.headers.get("content-range")]).toEqual([range, code, contentRange]);
      if (slice) expect([range, body.equals(PNG.subarray(...slice)), res.headers.get("content-type"), res.headers.get("x-content-type-options")]).toEqual([range, true, "image/png", "nosniff"]);
    }
    const unix = await gw.http("unix", url, { headers: { range: "bytes=-2" } });
    expect([unix.status, Buffer.from(await unix.arrayBuffer()).equals(PNG.subarray(size - 2))]).toEqual([206, true]);
    writeFileSync(join(gw.config.data_dir, "media", "art.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>");
    const svg = await gw.http("tcp", forge(gw, now() + 60, "art.svg"));
    expect(svg.headers.get("content-type")).toBe("image/svg+xml");
    expect(svg.headers.get("content-security-policy")).toContain("sandbox");
  });

  test("URLs survive a restart until they expire (the secret is persisted, mode 0600)", async () => {
    const dir = tempDir();
    const first = await startTestGateway({ data_dir: dir });
    const { url } = await stored(first);
    await first.stop();
    const second = await startTestGateway({ data_dir: dir });
    expect((await second.http("tcp", url)).status).toBe(200);
    expect(Bun.file(join(dir, "media-secret")).size).toBe(32);
  });
});

describe("agent media and bookkeeping", () => {
  test("an agent's files and markdown images become signed URLs; the transcript keeps the originals; replay re-signs", async () => {
    const workspace = tempDir();
    const chart = join(workspace, "chart.png");
    writeFileSync(chart, PNG);
    const gw = await startTestGateway(stdioAgentConfig({ media_allowed_roots: [workspace] }));
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    client.send({ type: "message", chat_id: ready.chat_id, content: `media ${chart} /etc/hostname`, media: [png] });
    const frames = await client.until(isTurnEnd);
    const streamed = frames.filter((f) => f.event === "delta");
    expect(streamed.map((f) => f.text).join("")).toMatch(/^look: !\[chart\]\(\/api\/media\/[\w-]{22}\/[\w-]+\)$/);
    const files = frames.find((f) => f.event === "message" && f.text === "files")!;
    expect(files.media_urls).toEqual([{ url: expect.stringMatching(/^\/api\/media\//), name: "chart.png" }]);
    const reported = JSON.parse(frames.find((f) => f.kind === "progress")!.text);
    expect(reported).toEqual([{ exists: true, mime: "image/png", name: "shot.png", url: expect.stringMatching(/^\/api\/media\//) }]);
    // What the gateway produced names no server path, not even in a delta (the user's own text may).
    for (const produced of frames.slice(1)) expect(JSON.stringify(produced)).not.toMatch(new RegExp(`${workspace}|${gw.config.data_dir}`));
    expect(JSON.stringify(frames)).not.toContain("private");
    expect((await gw.http("tcp", files.media_urls[0].url)).status).toBe(200);

    await Bun.sleep(gw.config.transcript_flush_ms * 3);
    const stored = readFileSync(join(gw.config.data_dir, "transcripts", `${ready.chat_id}.jsonl`), "utf8");
    expect(stored).toContain(`"private":{"text":"look: ![chart](${chart})"}`);
    expect(stored).toContain(`"private":{"text":"files","media":["${chart}","/etc/hostname"]}`);
    const later = await TestClient.ready(gw.wsUrl("unix"));
    later.client.send({ type: "attach", chat_id: ready.chat_id, since_seq: 0 });
    await later.client.next();
    const replayed = await later.client.until(isTurnEnd);
    expect(JSON.stringify(replayed)).not.toContain("private");
    expect(replayed.filter((f) => f.event === "delta").map((f) => f.text).join("")).toMatch(/^look: !\[chart\]\(\/api\/media\//);
  });

  test("a markdown image split across deltas is held back and published rewritten", async () => {
    const workspace = tempDir();
    writeFileSync(join(workspace, "pic.png"), PNG);
    const gw = await startTestGateway(stdioAgentConfig({ media_allowed_roots: [workspace] }));
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    const frames = await sendTurn(client, ready.chat_id, `split ${join(workspace, "pic.png")}`);
    const deltas = frames.filter((f) => f.event === "delta").map((f) => f.text as string);
    expect(deltas.join("")).toMatch(/^before !\[pic\]\(\/api\/media\/[\w-]{22}\/[\w-]+\) after$/);
    expect(deltas.some((d) => d.includes(workspace))).toBe(false);
  });

  test("deleting a chat deletes its files; stray files are swept at start", async () => {
    const dir = tempDir();
    const gw = await startTestGateway({ data_dir: dir, token: "t" });
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp", { token: "t" }));
    await sendTurn(client, ready.chat_id, "with media");
    client.send({ type: "message", chat_id: ready.chat_id, content: "pic", media: [png] });
    await client.until(isTurnEnd);
    expect(mediaFiles(gw)).toHaveLength(1);
    expect((await gw.http("tcp", `/api/sessions/websocket:${ready.chat_id}/delete?token=t`)).status).toBe(200);
    expect(mediaFiles(gw)).toEqual([]);
    const stray = join(dir, "media", "stray.png");
    writeFileSync(stray, PNG);
    const anHourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(stray, anHourAgo, anHourAgo);
    await gw.stop();
    const again = await startTestGateway({ data_dir: dir });
    await again.stop(); // the sweep runs while serving; stop waits for it
    expect(mediaFiles(again)).toEqual([]);
  });

  test("the sweep at start spares a file written after the gateway started (an upload in flight)", async () => {
    const dir = tempDir();
    await (await startTestGateway({ data_dir: dir })).stop();
    const orphan = join(dir, "media", "uploads", "crashed.png");
    const inFlight = join(dir, "media", ".tmp", "being-written");
    mkdirSync(join(dir, "media", "uploads"), { recursive: true });
    for (const file of [orphan, inFlight]) writeFileSync(file, PNG);
    const anHourAgo = new Date(Date.now() - 3_600_000);
    const inAMinute = new Date(Date.now() + 60_000);
    utimesSync(orphan, anHourAgo, anHourAgo);
    utimesSync(inFlight, inAMinute, inAMinute);
    const gw = await startTestGateway({ data_dir: dir });
    await gw.stop();
    expect(existsSync(orphan)).toBe(false);
    expect(readFileSync(inFlight).equals(PNG)).toBe(true);
  });
});

describe("media signing secret", () => {
  const race = async (file: string, processes: number) => {
    const start = String(Date.now() + 400);
    const runs = Array.from({ length: processes }, () => Bun.spawn([process.execPath, join(import.meta.dir, "fixtures/media-secret.ts"), file, start], { stdout: "pipe" }));
    const secrets = await Promise.all(runs.map((p) => new Response(p.stdout).text()));
    for (const p of runs) expect(await p.exited).toBe(0);
    return { secrets, onDisk: readFileSync(file).toString("hex") };
  };

  test("nodes creating it at once on one shared directory all end up with the one on disk", async () => {
    for (let round = 0; round < 3; round++) {
      const { secrets, onDisk } = await race(join(tempDir(), "media-secret"), 3);
      expect(secrets).toEqual([onDisk, onDisk, onDisk]);
    }
  });

  test("a secret file too short to use is replaced, and every racer takes the replacement on disk", async () => {
    const file = join(tempDir(), "media-secret");
    writeFileSync(file, "short");
    const { secrets, onDisk } = await race(file, 3);
    expect(onDisk).toHaveLength(64);
    expect(secrets).toEqual([onDisk, onDisk, onDisk]);
  });
});
