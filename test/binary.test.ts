/**
 * End to end through the compiled single executable, run from an empty working
 * directory with an empty HOME: nothing but the binary itself may be needed.
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
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
