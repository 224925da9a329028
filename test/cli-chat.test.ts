/**
 * `agentgate chat` as a real child process against a real gateway: `--once`
 * through a pipe (TCP with a bootstrap token, and the unix socket), the
 * interactive commands fed through a pipe, and Ctrl-C through a pty (python3's
 * pty module), which stops the running turn and, pressed again, exits.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, onCleanup, REPO_ROOT, startTestGateway, tempDir } from "./helpers.ts";

const MAIN = join(REPO_ROOT, "src/main.ts");

async function chat(args: string[], stdin: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = tempDir();
  const proc = Bun.spawn([BUN, MAIN, "chat", ...args], { cwd: dir, env: { PATH: process.env.PATH ?? "", HOME: dir }, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  onCleanup(() => {
    if (proc.exitCode === null) proc.kill("SIGKILL");
  });
  proc.stdin.write(stdin);
  await proc.stdin.end();
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

const tcpUrl = (gw: Awaited<ReturnType<typeof startTestGateway>>) => `http://127.0.0.1:${gw.listeners.find((l) => l.transport === "tcp")?.server.port}`;

test("chat --once prints only the reply, over TCP with a bootstrap token and over the unix socket", async () => {
  const gw = await startTestGateway({ websocket_requires_token: true, echo_chunk_size: 3 });
  const tcp = await chat(["--once", `--url=${tcpUrl(gw)}`], "hi there\n");
  expect(tcp).toMatchObject({ code: 0, stdout: "hi there\n" });
  const unix = await chat(["--once", `--unix-socket-path=${gw.config.unix_socket_path}`], "over the socket");
  expect(unix).toMatchObject({ code: 0, stdout: "over the socket\n" });
  const refused = await chat(["--once", `--url=${tcpUrl(gw)}`, "--token=wrong"], "nope");
  expect(refused.code).not.toBe(0);
  expect(refused.stdout).toBe("");
  expect(refused.stderr).toContain("refused this client");
}, 30_000);

test("interactive chat through a pipe: replies in order, /new starts another chat, /sessions lists both", async () => {
  const gw = await startTestGateway({ websocket_requires_token: true });
  const { code, stdout } = await chat([`--url=${tcpUrl(gw)}`], "first line\n/new\nsecond line\n/sessions\n");
  expect(code).toBe(0);
  expect(stdout.indexOf("first line")).toBeLessThan(stdout.indexOf("second line"));
  const ids = [...stdout.matchAll(/^(?:> )*([0-9a-f-]{36})( \*)?  (.*)$/gm)].map((m) => ({ id: m[1], current: m[2] !== undefined, title: m[3] }));
  expect(ids).toHaveLength(2);
  expect(ids.find((r) => r.current)?.title).toBe("second line");
  expect(ids.find((r) => !r.current)?.title).toBe("first line");
  expect(stdout).not.toContain("you> ");

  // /open replays a chat's history, the lines typed elsewhere included.
  const reopened = await chat([`--url=${tcpUrl(gw)}`], `/open ${ids.find((r) => !r.current)?.id}\nand more\n`);
  expect(reopened.code).toBe(0);
  expect(reopened.stdout).toContain("you> first line\nfirst line\n");
  expect(reopened.stdout).toContain("and more\n");
  expect(reopened.stdout).not.toContain("you> and more");
}, 30_000);

test("in a terminal, Ctrl-C stops the running turn and a second Ctrl-C exits", async () => {
  const gw = await startTestGateway({ websocket_requires_token: true, echo_chunk_size: 1, echo_delay_ms: 100 });
  const dir = tempDir();
  const driver = join(REPO_ROOT, "test/fixtures/pty_chat.py");
  const proc = Bun.spawn(["python3", driver, BUN, MAIN, "chat", `--url=${tcpUrl(gw)}`], { cwd: dir, env: { PATH: process.env.PATH ?? "", HOME: dir }, stdout: "pipe", stderr: "pipe" });
  onCleanup(() => {
    if (proc.exitCode === null) proc.kill("SIGKILL");
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
  expect(stdout).toContain("[cancelled]");
  expect(stdout).not.toContain("streamed slowly\r\n[cancelled]");
  expect(stdout).toEndWith("EXIT 0\n");
}, 40_000);
