import { describe, expect, test } from "bun:test";
import { existsSync, lstatSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUN, isTurnEnd, onCleanup, REPO_ROOT, spawnServe, startTestGateway, TestClient, tempDir } from "./helpers.ts";

const spawnGateway = (args: string[]) => spawnServe([BUN, join(REPO_ROOT, "src/main.ts"), "serve", ...args]);

describe("unix socket", () => {
  test("is created with mode 0600", async () => {
    const gw = await startTestGateway();
    const sock = join(gw.dir, "gw.sock");
    expect(lstatSync(sock).isSocket()).toBe(true);
    expect(statSync(sock).mode & 0o777).toBe(0o600);
  });

  test("a stale socket file is removed at start; a live one makes the second instance refuse", async () => {
    const dir = tempDir();
    const sock = join(dir, "gw.sock");
    const first = await spawnGateway(["--tcp-enabled=false", `--unix-socket-path=${sock}`, `--data-dir=${dir}/d`]);
    first.proc.kill("SIGKILL");
    await first.proc.exited;
    expect(lstatSync(sock).isSocket()).toBe(true);
    const second = await spawnGateway(["--tcp-enabled=false", `--unix-socket-path=${sock}`, `--data-dir=${dir}/d`, "--websocket-requires-token=false"]);
    const { ready } = await TestClient.ready(`ws+unix://${sock}:/`);
    expect(ready.event).toBe("ready");
    const third = Bun.spawnSync([BUN, join(REPO_ROOT, "src/main.ts"), "--tcp-enabled=false", `--unix-socket-path=${sock}`, `--data-dir=${dir}/d`]);
    expect(third.exitCode).toBe(1);
    expect(third.stderr.toString()).toContain(`another instance is listening on ${sock}`);
    second.proc.kill("SIGTERM");
    expect(await second.proc.exited).toBe(0);
  });

  test("a path that is not a socket is never removed", () => {
    const dir = tempDir();
    const file = join(dir, "important.txt");
    writeFileSync(file, "keep me");
    const out = Bun.spawnSync([BUN, join(REPO_ROOT, "src/main.ts"), "--tcp-enabled=false", `--unix-socket-path=${file}`, `--data-dir=${dir}/d`]);
    expect(out.exitCode).toBe(1);
    expect(out.stderr.toString()).toContain("exists and is not a socket");
    expect(Bun.file(file).size).toBe(7);
  });
});

describe("process lifecycle", () => {
  test("the banner tells where it listens and gives a ready-to-paste URL with a one-time token", async () => {
    const dir = tempDir();
    const { proc, banner } = await spawnGateway(["--port=0", `--unix-socket-path=${dir}/gw.sock`, `--data-dir=${dir}/d`]);
    const url = banner.match(/(ws:\/\/127\.0\.0\.1:\d+\/\?token=nbwt_\S+)/)?.[1];
    expect(url).toBeDefined();
    expect(banner).toContain(`ws+unix://${dir}/gw.sock:/?token=nbwt_`);
    expect((await TestClient.ready(url!)).ready.event).toBe("ready");
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  });

  test("`agentgate token` mints a working one-time token from a running gateway on defaults, over TCP or its unix socket", async () => {
    const dir = tempDir();
    const { proc, banner } = await spawnGateway(["--port=0", `--data-dir=${dir}/d`]);
    const port = banner.match(/ws:\/\/127\.0\.0\.1:(\d+)\//)![1];
    const minted = Bun.spawnSync([BUN, join(REPO_ROOT, "src/main.ts"), "token", `--port=${port}`], { env: { PATH: process.env.PATH ?? "", HOME: dir } });
    expect(minted.exitCode).toBe(0);
    const token = minted.stdout.toString().trim();
    expect(token).toMatch(/^nbwt_/);
    expect(minted.stderr.toString()).toContain(`connect: ws://127.0.0.1:${port}/?token=${token}`);
    expect((await TestClient.ready(`ws://127.0.0.1:${port}/?token=${token}`)).ready.event).toBe("ready");
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  });

  test("SIGTERM lets the running turn finish, closes clients with 1001, exits 0 and removes the socket", async () => {
    const dir = tempDir();
    const sock = join(dir, "gw.sock");
    const { proc } = await spawnGateway([
      "--port=0",
      `--unix-socket-path=${sock}`,
      `--data-dir=${dir}/d`,
      "--websocket-requires-token=false",
      "--echo-chunk-size=1",
      "--echo-delay-ms=2",
    ]);
    const { client, ready } = await TestClient.ready(`ws+unix://${sock}:/`);
    client.send({ type: "message", chat_id: ready.chat_id, content: "finish me please" });
    await client.until((f) => f.event === "delta");
    proc.kill("SIGTERM");
    const rest = await client.until(isTurnEnd);
    expect(rest.find((f) => f.event === "turn_end")?.status).toBe("done");
    expect((await client.closed).code).toBe(1001);
    expect(await proc.exited).toBe(0);
    expect(existsSync(sock)).toBe(false);
  });
});

test("wss: TCP with a certificate and key serves TLS", async () => {
  const dir = tempDir();
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const made = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"]);
  expect(made.exitCode).toBe(0);
  const gw = await startTestGateway({ ssl_certfile: cert, ssl_keyfile: key, unix_socket_path: "" });
  const address = gw.listeners[0]!.address;
  expect(address).toStartWith("wss://127.0.0.1:");
  const ws = new WebSocket(address, { tls: { rejectUnauthorized: false } });
  onCleanup(() => ws.close());
  const first = await new Promise<string>((resolve, reject) => {
    ws.addEventListener("message", (e) => resolve(String(e.data)));
    ws.addEventListener("error", () => reject(new Error("wss connect failed")));
  });
  expect(JSON.parse(first).event).toBe("ready");
});
