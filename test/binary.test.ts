/**
 * End to end through the compiled single executable, run from an empty working
 * directory with an empty HOME: nothing but the binary itself may be needed.
 */
import { expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { redactConfig, resolveConfig } from "../src/config.ts";
import { BINARY, ensureBinary, isTurnEnd, spawnServe, TestClient, tempDir } from "./helpers.ts";

test("the compiled binary serves a streamed turn over its unix socket from an empty directory", async () => {
  ensureBinary();
  const cwd = tempDir("agentgate-empty-");
  const sock = join(cwd, "run", "agentgate.sock");
  const { proc, banner } = await spawnServe([BINARY, "--tcp-enabled=false", `--unix-socket-path=${sock}`, "--echo-chunk-size=5"], cwd);
  const url = banner.match(/(ws\+unix:\S+\?token=nbwt_\S+)/)?.[1];
  expect(url).toStartWith(`ws+unix://${sock}:/?token=`);
  expect(existsSync(join(cwd, ".agentgate"))).toBe(true);

  const { client, ready } = await TestClient.ready(url!);
  client.send({ type: "message", chat_id: ready.chat_id, content: "from the binary" });
  const frames = await client.until(isTurnEnd);
  expect(frames.filter((f) => f.event === "delta").map((f) => f.text)).toEqual(["from ", "the b", "inary"]);
  expect(frames.find((f) => f.event === "turn_end")?.status).toBe("done");

  // The chat page at / comes out of the executable itself: nothing next to it in this empty directory.
  const page = await fetch("http://localhost/", { unix: sock } as RequestInit);
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toContain("<title>agentgate</title>");
  const script = html.match(/src="(\/_ui\/app\.[a-z0-9]+\.js)"/)?.[1];
  const js = await fetch(`http://localhost${script}`, { unix: sock } as RequestInit);
  expect(js.status).toBe(200);
  expect(await js.text()).toContain("webui/bootstrap");

  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
  expect(existsSync(sock)).toBe(false);
}, 60_000);

/** The binary's config comes from the catalog build.ts embedded (src/config-rules.ts), without zod; the schema's must come out. */
test("the compiled binary takes the same config as the schema, and refuses an invalid one before anything is written", () => {
  ensureBinary();
  const cwd = tempDir("agentgate-empty-");
  const run = (args: string[]) => {
    const proc = Bun.spawnSync([BINARY, ...args], { cwd, env: { PATH: process.env.PATH ?? "", HOME: cwd, AGENTGATE_ECHO_REPEAT: "3" } });
    return { code: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
  };
  const plain = ["--port=9000", "--streaming=off", "--log-level=warn", `--data-dir=${join(cwd, "state")}`, "--token=tok"];
  const checked = run(["check-config", ...plain]);
  expect(checked.code).toBe(0);
  const schema = resolveConfig({ echo_repeat: "3" }, { port: "9000", streaming: "off", log_level: "warn", data_dir: join(cwd, "state"), token: "tok" }).config;
  expect(checked.stdout).toBe(`config ok\n${JSON.stringify(redactConfig(schema), null, 2)}\n`);

  for (const [args, message] of [
    [["--port=99999"], "invalid config: port: "],
    [["--host=0.0.0.0"], "invalid config: host: host is 0.0.0.0 (all interfaces) but neither token nor token_issue_secret is set"],
    [["--path=nope"], 'invalid config: path: must start with "/"'],
    [[`--unix-socket-path=${join(cwd, "run", "gw.sock")}`, "--tcp-enabled=false", "--slow-consumer-bytes=65536"], "invalid config: replay_buffer_bytes: "],
  ] as const) {
    const out = run(["serve", ...args, `--data-dir=${join(cwd, "state")}`]);
    expect(out.code).toBe(1);
    expect(out.stderr).toStartWith(`agentgate: ${message}`);
    expect(out.stderr.trim().split("\n")).toHaveLength(1);
    expect(readdirSync(cwd)).toEqual([]);
  }
}, 60_000);
