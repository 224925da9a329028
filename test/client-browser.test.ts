/**
 * The SDK's browser bundle in Debian's chromium (playwright-core drives it):
 * examples/browser.html imports dist/client/index.min.js, connects to a real
 * gateway, streams a turn, survives a dropped socket and streams another.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { onCleanup, REPO_ROOT, startTestGateway } from "./helpers.ts";
import { buildClient, CLIENT_MIN_JS } from "./sdk-build.ts";

const CHROMIUM = "/usr/bin/chromium";
const FILES = new Map<string, { path: string; type: string }>([
  ["/examples/browser.html", { path: join(REPO_ROOT, "examples/browser.html"), type: "text/html" }],
  ["/dist/client/index.min.js", { path: CLIENT_MIN_JS, type: "text/javascript" }],
]);

/** Serves exactly the page and the bundle, nothing else. */
function servePage() {
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      const file = FILES.get(new URL(req.url).pathname);
      return file ? new Response(Bun.file(file.path), { headers: { "content-type": file.type } }) : new Response("not found", { status: 404 });
    },
  });
  onCleanup(() => server.stop(true));
  return server;
}

test("examples/browser.html streams a turn in chromium, reconnects after a dropped socket and streams another", async () => {
  await buildClient();
  const page$ = servePage();
  // The page is served from another origin than the gateway's: it must be allowed (allowed_origins).
  const gw = await startTestGateway({ echo_chunk_size: 2, allowed_origins: [`http://127.0.0.1:${page$.port}`] });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--headless=new"] });
  onCleanup(() => browser.close());
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const query = new URLSearchParams({ ws: gw.wsUrl("tcp"), say: "hello from chromium" });
  await page.goto(`http://127.0.0.1:${page$.port}/examples/browser.html?${query}`);
  const turn = async () => {
    await page.waitForFunction("document.body.dataset.turn", undefined, { timeout: 15_000 });
    return JSON.parse(await page.evaluate<string>("document.body.dataset.turn"));
  };
  expect(await turn()).toMatchObject({ text: "hello from chromium", status: "done" });
  // Runs in the page (a string: the test's own types know no DOM).
  await page.evaluate(`(async () => {
    const { client, chat } = window.agentgate;
    delete document.body.dataset.turn;
    const reopened = client.once("open");
    client.socket.close();
    await reopened;
    await chat.send("and again");
  })()`);
  expect(await turn()).toMatchObject({ text: "and again", status: "done" });
  expect(await page.textContent("#out")).toBe("\n> hello from chromium\nhello from chromium\n> and again\nand again");
  expect(errors).toEqual([]);
}, 60_000);
