/**
 * `agentgate chat` as a real child process against a real gateway: `--once`
 * through a pipe (TCP with a bootstrap token, and the unix socket), the
 * interactive commands fed through a pipe, Ctrl-C through a pty (python3's pty
 * module), which stops the running turn and, pressed again, exits, and a chat
 * that carries on across gateway restarts (SIGTERM, then kill -9) mid-reply.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { bootstrap, bootstrapToken, GatewayApi } from "agentgate/client";
import { BUN, onCleanup, REPO_ROOT, spawnServe, startTestGateway, storedEvents, tempDir, textOfTurn } from "./helpers.ts";

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

/** `agentgate chat` on pipes, fed line by line; what it printed so far is in `out`. */
function liveChat(args: string[], cwd: string) {
  const proc = Bun.spawn([BUN, MAIN, "chat", ...args], { cwd, env: { PATH: process.env.PATH ?? "", HOME: cwd }, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  onCleanup(() => {
    if (proc.exitCode === null) proc.kill("SIGKILL");
  });
  const live = { proc, out: "" };
  void (async () => {
    for await (const chunk of proc.stdout) live.out += new TextDecoder().decode(chunk);
  })();
  return {
    live,
    say: (line: string) => (proc.stdin.write(`${line}\n`), proc.stdin.flush()),
    /** Waits (bounded) until the output matches. */
    async until(match: (out: string) => boolean, what: string): Promise<void> {
      for (let waited = 0; !match(live.out); waited += 20) {
        if (waited > 15_000 || proc.exitCode !== null) throw new Error(`chat never printed ${what}; it printed: ${live.out}`);
        await Bun.sleep(20);
      }
    },
  };
}

test("across gateway restarts mid-reply (SIGTERM, then kill -9): each reply is printed once, as stored, and the chat goes on", async () => {
  const dir = tempDir("agentgate-chat-restart-");
  const socketPath = join(dir, "gw.sock");
  // Paced so a reply of 10 000 one-character deltas is still streaming when the gateway goes.
  const serve = () =>
    spawnServe(
      [BUN, MAIN, "--tcp-enabled=false", `--unix-socket-path=${socketPath}`, "--data-dir=data", "--echo-chunk-size=1", "--echo-repeat=1000", "--echo-delay-ms=2"]
        .concat(["--shutdown-grace-ms=50", "--log-level=error"]),
      dir,
    );
  let gateway = await serve();
  const chat = liveChat([`--unix-socket-path=${socketPath}`], dir);
  // A clean shutdown cancels the running turn; after a kill the next start closes it as interrupted.
  for (const [signal, ending] of [["SIGTERM", "[cancelled]"], ["SIGKILL", "[interrupted]"]] as const) {
    const printed = chat.live.out.length;
    chat.say("0123456789");
    await chat.until((out) => out.length - printed >= 50, "50 characters of the reply");
    gateway.proc.kill(signal);
    await gateway.proc.exited;
    gateway = await serve();
    await chat.until((out) => out.includes(ending), ending);
  }
  const next = ".".repeat(1000); // the echo of "." (1 000 times, 2 s)
  chat.say(".");
  await chat.until((out) => out.includes(`${next}\n`), "the next reply");
  await chat.live.proc.stdin.end();
  expect(await chat.live.proc.exited).toBe(0);

  // Each reply as printed (between the prompt and its ending) is the turn's text as the gateway stored it.
  const replies = [...chat.live.out.matchAll(/(?:> )*([0-9]*)\n\[(cancelled|interrupted)\]/g)].map((m) => ({ text: m[1] ?? "", status: m[2] }));
  expect(replies.map((r) => r.status)).toEqual(["cancelled", "interrupted"]);
  const chatId = await lastChatId(socketPath);
  const stored = await storedEvents(`ws+unix://${socketPath}:/?token=${await bootstrapToken({ socketPath })()}`, chatId);
  const turnIds = [...new Set(stored.filter((f) => f.event === "delta").map((f) => f.turn_id as string))];
  expect(turnIds).toHaveLength(3);
  for (const [i, reply] of replies.entries()) {
    expect(reply.text.length).toBeGreaterThanOrEqual(50);
    expect("0123456789".repeat(1000).startsWith(reply.text)).toBe(true); // no delta printed twice
    expect(reply.text).toBe(textOfTurn(stored, turnIds[i]!));
  }
  expect(textOfTurn(stored, turnIds[2]!)).toBe(next);
  expect(chat.live.out.split(next)).toHaveLength(2);
}, 60_000);

/** The one chat on the gateway, from the sessions API. */
async function lastChatId(socketPath: string): Promise<string> {
  const rows = await new GatewayApi({ socketPath, apiToken: (await bootstrap({ socketPath })).api_token }).listSessions();
  expect(rows).toHaveLength(1);
  return rows[0]!.key.replace(/^websocket:/, "");
}
