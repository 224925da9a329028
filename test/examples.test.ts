/**
 * The examples run as their users would run them, against gateway processes:
 * examples/stream-turn.mjs under Node (built JS, global WebSocket) through a
 * gateway restart and under Bun (TypeScript source), and examples/python_client.py
 * with the `websockets` package. (examples/browser.html: client-browser.test.ts.)
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, onCleanup, REPO_ROOT, spawnServe, tempDir } from "./helpers.ts";
import { buildClient } from "./sdk-build.ts";

const EXAMPLE = join(REPO_ROOT, "examples/stream-turn.mjs");
const TEXT = "0123456789";
const REPEAT = 20;

function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}

/** A gateway from source on a fixed TCP port, requiring single-use tokens, with a paced echo. */
const serve = (dir: string, port: number) =>
  spawnServe(
    [BUN, join(REPO_ROOT, "src/main.ts"), `--port=${port}`, "--unix-socket-path=", "--data-dir=data", "--log-level=error"]
      .concat([`--echo-repeat=${REPEAT}`, "--echo-chunk-size=1", "--echo-delay-ms=5", "--shutdown-grace-ms=50"]),
    dir,
  );

function run(command: string[]) {
  const proc = Bun.spawn(command, { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
  onCleanup(() => {
    if (proc.exitCode === null) proc.kill("SIGKILL");
  });
  return proc;
}

/** Reads on until the text holds at least `chars` characters (Infinity: to the end). */
async function readOn(reader: { read(): Promise<{ value?: Uint8Array; done: boolean }> }, text: string, chars: number): Promise<string> {
  while (text.length < chars) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  return text;
}

test("examples: stream-turn.mjs under Node (built JS) survives a gateway restart mid-turn; under Bun and python_client.py (websockets) each stream a turn with a fresh token", async () => {
  await buildClient();
  const dir = tempDir("agentgate-example-");
  const port = freePort();
  const first = await serve(dir, port);
  const args = [EXAMPLE, "--url", `ws://127.0.0.1:${port}/`, "--bootstrap", `http://127.0.0.1:${port}`, TEXT];
  const node = run(["node", "--experimental-websocket", "--no-warnings", ...args]);
  const stdout = node.stdout.getReader();
  const before = await readOn(stdout, "", 20);
  first.proc.kill("SIGTERM");
  await first.proc.exited;
  await serve(dir, port);
  const all = await readOn(stdout, before, Infinity);
  const stderr = await new Response(node.stderr).text();
  expect(await node.exited).toBe(0);
  const lines = all.split("\n");
  expect(lines.at(-2)).toBe(TEXT.repeat(REPEAT));
  expect(lines.at(-1)).toBe("");
  expect(stderr).toContain("[reconnecting");
  expect(stderr).toContain("asking again");

  const bun = run([BUN, ...args.slice(0, -1), "hi"]);
  expect(await new Response(bun.stdout).text()).toBe(`${"hi".repeat(REPEAT)}\n`);
  expect(await bun.exited).toBe(0);

  // pyenv's python3 may lack the package where Debian's has python3-websockets (.ci/run installs either).
  const python = ["python3", "/usr/bin/python3"].find((p) => Bun.spawnSync([p, "-c", "import websockets"]).exitCode === 0);
  if (!python) throw new Error("no python3 can import websockets: install it (pip install websockets or apt python3-websockets; .ci/run does)");
  const py = run([python, join(REPO_ROOT, "examples/python_client.py"), ...args.slice(1, -1), "hey"]);
  expect(await new Response(py.stdout).text()).toBe(`${"hey".repeat(REPEAT)}\n`);
  expect(await py.exited).toBe(0);
}, 60_000);
