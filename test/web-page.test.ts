/**
 * The built-in chat page at / in Debian's chromium (playwright-core), against a
 * real gateway run from source (the page is bundled on the first request) with
 * the echo agent: streaming, Stop, a reload mid-stream, the sessions sidebar, an
 * image upload, agent text that tries to run script, choosing the agent of a new
 * chat, and resuming after a dropped network or a sleep (through a real TCP proxy,
 * test/tcp-proxy.ts). Screenshots of both themes at 375 px are saved under a temp
 * dir (their paths are printed).
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import type { ConfigInput } from "../src/config.ts";
import { onCleanup, PY_AGENT, startTestGateway, tempDir } from "./helpers.ts";
import { TcpProxy } from "./tcp-proxy.ts";

const CHROMIUM = "/usr/bin/chromium";
const WAIT = { timeout: 15_000 };
const LAST_TURN = ".msg.agent[data-turn]";

interface OpenPage {
  page: Page;
  browser: Browser;
  errors: string[];
  /** The proxy the page talks to the gateway through, when asked for. */
  proxy?: TcpProxy;
}

async function openPage(overrides: Partial<ConfigInput> = {}, viewport = { width: 1000, height: 700 }, online = true, proxied = false): Promise<OpenPage> {
  const gw = await startTestGateway({ websocket_requires_token: true, ...overrides });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--headless=new"] });
  onCleanup(() => browser.close());
  const page = await browser.newPage({ viewport });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  const gatewayPort = gw.listeners.find((l) => l.transport === "tcp")?.server.port ?? 0;
  const proxy = proxied ? new TcpProxy(gatewayPort) : undefined;
  await page.goto(`http://127.0.0.1:${proxy?.port ?? gatewayPort}/`);
  if (online) await page.waitForSelector('#conn[data-state="online"]', WAIT);
  return { page, browser, errors, ...(proxy && { proxy }) };
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill("#input", text);
  await page.press("#input", "Enter");
}

const turnStatus = (page: Page, status: string) => page.waitForSelector(`${LAST_TURN}[data-status="${status}"]`, WAIT);

test("Enter sends, the reply streams in as Markdown, Shift+Enter is a new line; screenshots in both themes at 375 px", async () => {
  const { page, errors } = await openPage({ echo_chunk_size: 3, echo_delay_ms: 5 }, { width: 375, height: 720 });
  await page.fill("#input", "# Hello");
  await page.press("#input", "Shift+Enter");
  await page.type("#input", "some **bold**");
  expect(await page.inputValue("#input")).toBe("# Hello\nsome **bold**");
  await page.fill("#input", "# Hello\nsome **bold** and `code`\n```js\nconst x = 1;\n```");
  await page.press("#input", "Enter");
  await turnStatus(page, "done");
  expect(await page.textContent(".msg.user .bubble")).toContain("# Hello");
  expect(await page.textContent(`${LAST_TURN} h3`)).toBe("Hello");
  expect(await page.textContent(`${LAST_TURN} strong`)).toBe("bold");
  expect(await page.textContent(`${LAST_TURN} pre code`)).toBe("const x = 1;");
  expect(await page.getAttribute(`${LAST_TURN} pre code`, "data-lang")).toBe("js");
  expect(await page.inputValue("#input")).toBe("");
  await page.waitForSelector("#sessions li.active", WAIT);

  const dir = tempDir("agentgate-screens-");
  for (const scheme of ["light", "dark"] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    const path = join(dir, `${scheme}.png`);
    await page.screenshot({ path });
    console.log(`screenshot: ${path}`);
    const bg = await page.evaluate<string>("getComputedStyle(document.body).backgroundColor");
    expect(bg).toBe(scheme === "light" ? "rgb(255, 255, 255)" : "rgb(22, 24, 28)");
  }
  // The toggle overrides the system's choice, and is remembered across a reload.
  await page.click("#theme");
  expect(await page.evaluate<string>("getComputedStyle(document.body).backgroundColor")).toBe("rgb(255, 255, 255)");
  await page.reload();
  await page.waitForSelector(`${LAST_TURN}[data-status="done"]`, WAIT);
  expect(await page.evaluate<string>("document.documentElement.dataset.theme")).toBe("light");
  // Usable at 375 px: nothing wider than the viewport.
  expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(375);
  expect(errors).toEqual([]);
}, 60_000);

test("agent text that tries to run script stays inert: no handler runs, no javascript: link, no foreign image", async () => {
  const { page, errors } = await openPage({ echo_chunk_size: 7 });
  const attacks = [
    `<img src=x onerror="window.pwned='img'">`,
    `[click](javascript:window.pwned='link')`,
    `![pic](javascript:window.pwned='image')`,
    `[data](data:text/html,<script>window.pwned='data'</script>)`,
    `<svg onload="window.pwned='svg'"></svg> ![remote](https://example.invalid/x.png)`,
  ].join("\n\n");
  await say(page, attacks);
  await turnStatus(page, "done");
  for (const link of await page.$$(`${LAST_TURN} a`)) await link.click({ modifiers: ["Control"] });
  expect(await page.evaluate("window.pwned")).toBeUndefined();
  expect(await page.$$eval("img", (imgs) => imgs.map((i) => i.getAttribute("src")))).toEqual([]);
  expect(await page.$$eval("a", (links) => links.map((a) => a.getAttribute("href")))).toEqual(["https://example.invalid/x.png"]);
  expect(await page.textContent(LAST_TURN)).toContain(`<img src=x onerror="window.pwned='img'">`);
  expect(await page.$("svg")).toBeNull();
  expect(errors).toEqual([]);
}, 60_000);

test("Stop ends a long turn; the page shows it stopped and offers Send again", async () => {
  const { page } = await openPage({ echo_chunk_size: 1, echo_delay_ms: 50 });
  await say(page, "a long reply that takes a while to arrive, one character at a time");
  await page.waitForSelector("#stop:not([hidden])", WAIT);
  await page.waitForSelector(`${LAST_TURN} .md p`, WAIT);
  await page.click("#stop");
  await turnStatus(page, "cancelled");
  expect(await page.textContent(`${LAST_TURN} .note`)).toBe("stopped");
  await page.waitForSelector("#send:not([hidden])", WAIT);
  expect(await page.isHidden("#stop")).toBe(true);
}, 60_000);

test("a reload mid-stream reopens the chat and the text continues without a duplicate", async () => {
  const repeat = 40;
  const { page } = await openPage({ echo_repeat: repeat, echo_delay_ms: 40 });
  await say(page, "tick-");
  await page.waitForFunction(() => ((globalThis as any).document.querySelector(".msg.agent .md")?.textContent ?? "").length >= 25, undefined, WAIT);
  const chatId = new URL(page.url()).hash.slice(1);
  expect(chatId).not.toBe("");
  await page.reload();
  await page.waitForSelector('#conn[data-state="online"]', WAIT);
  expect(new URL(page.url()).hash.slice(1)).toBe(chatId);
  await turnStatus(page, "done");
  expect(await page.textContent(`${LAST_TURN} .md`)).toBe("tick-".repeat(repeat));
  expect(await page.$$eval(".msg.user", (m) => m.length)).toBe(1);
}, 60_000);

test("the sidebar opens, renames and deletes chats; New chat starts another", async () => {
  const { page } = await openPage();
  page.on("dialog", (d) => void d.accept());
  await say(page, "first chat");
  await turnStatus(page, "done");
  await page.click("#new-chat");
  expect(await page.$$(".msg")).toHaveLength(0);
  // One agent (echo): nothing to choose.
  expect(await page.isHidden("#agent")).toBe(true);
  await say(page, "second chat");
  await turnStatus(page, "done");
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll("#sessions li").length === 2, undefined, WAIT);

  const first = '#sessions li:has-text("first chat")';
  await page.click(`${first} .open`);
  await page.waitForSelector('.msg.user:has-text("first chat")', WAIT);
  await page.click(`${first} button[title="Rename"]`);
  await page.fill("#sessions input.rename", "Renamed by the test");
  await page.press("#sessions input.rename", "Enter");
  await page.waitForSelector('#sessions li .open:has-text("Renamed by the test")', WAIT);

  await page.click('#sessions li:has-text("Renamed by the test") button[title="Delete"]');
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll("#sessions li").length === 1, undefined, WAIT);
  expect(await page.textContent("#sessions li .open")).toContain("second chat");
  expect(await page.$$(".msg")).toHaveLength(0);
  await page.reload();
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll("#sessions li").length === 1, undefined, WAIT);
}, 60_000);

test("an attached image is uploaded through the media API and shown from its signed URL", async () => {
  const { page } = await openPage();
  const png = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP8z4AATEhsZQYGAD8gAgH1hH6hAAAAAElFTkSuQmCC",
    "base64",
  );
  await page.setInputFiles("#file", { name: "dot.png", mimeType: "image/png", buffer: png });
  await page.waitForSelector("#attachments img", WAIT);
  await say(page, "look at this");
  await turnStatus(page, "done");
  const img = await page.waitForSelector(".msg.user img.attached", WAIT);
  expect(await img.getAttribute("src")).toContain("/api/media/");
  await page.waitForFunction(() => (globalThis as any).document.querySelector(".msg.user img.attached")?.naturalWidth === 8, undefined, WAIT);
  expect(await page.$$("#attachments img")).toHaveLength(0);

  // A file that only claims to be an image is refused by the gateway; the page says so and keeps what was typed.
  await page.setInputFiles("#file", { name: "fake.png", mimeType: "image/png", buffer: Buffer.from("not an image at all") });
  await say(page, "and this one");
  const refusal = await page.waitForSelector(".note.error", WAIT);
  expect(await refusal.textContent()).toStartWith("Not sent: ");
  expect(await page.inputValue("#input")).toBe("and this one");
  expect(await page.$$(".msg.user")).toHaveLength(1);
}, 60_000);

test("when bootstrap asks for a secret, the page asks for it, asks again after a wrong one, then connects and chats", async () => {
  const { page } = await openPage({ token_issue_secret: "the-bootstrap-secret" }, undefined, false);
  await page.waitForSelector("#token-dialog[open]", WAIT);
  expect(await page.textContent("#token-why")).toContain("needs a token");
  await page.fill("#token-input", "a wrong guess");
  await page.press("#token-input", "Enter");
  await page.waitForFunction(() => (globalThis as any).document.getElementById("token-why").textContent.includes("refused"), undefined, WAIT);
  await page.fill("#token-input", "the-bootstrap-secret");
  await page.press("#token-input", "Enter");
  await page.waitForSelector('#conn[data-state="online"]', WAIT);
  await say(page, "with a secret");
  await turnStatus(page, "done");
  expect(await page.textContent(`${LAST_TURN} .md`)).toBe("with a secret");
}, 60_000);

test("with two agents, New chat offers a choice: the chosen one (the Python stdio fixture) answers, an open chat hides the choice", async () => {
  const { page, errors } = await openPage({ agents: { py: { type: "stdio", command: ["python3", PY_AGENT, "py"] } } });
  await page.waitForSelector("#agent:not([hidden])", WAIT);
  expect(await page.$$eval("#agent option", (options) => options.map((o) => o.textContent))).toEqual(["echo", "py"]);
  expect(await page.inputValue("#agent")).toBe("echo");
  await page.selectOption("#agent", "py");
  await say(page, "which agent");
  await turnStatus(page, "done");
  // The fixture reasons before it answers and reports a file edit; echo does neither.
  expect(await page.textContent(`${LAST_TURN} .reasoning pre`)).toBe("thinking about which agent");
  expect(await page.textContent(`${LAST_TURN} .hint.edit`)).toBe("edited a.txt");
  expect(await page.isHidden("#agent")).toBe(true);

  await page.click("#new-chat");
  await page.waitForSelector("#agent:not([hidden])", WAIT);
  await page.selectOption("#agent", "echo");
  await say(page, "and now echo");
  await turnStatus(page, "done");
  expect(await page.textContent(`${LAST_TURN} .md`)).toBe("and now echo");
  expect(await page.$(`${LAST_TURN} .reasoning`)).toBeNull();
  expect(errors).toEqual([]);
}, 60_000);

const REPEAT = 100;
/** A turn of REPEAT × "tick-" in deltas of 5 characters every 30 ms: about 3 s of streaming. */
const LONG_TURN: Partial<ConfigInput> = { echo_repeat: REPEAT, echo_chunk_size: 5, echo_delay_ms: 30 };
const agentText = (page: Page) => page.evaluate<string>(`document.querySelector("${LAST_TURN} .md")?.textContent ?? ""`);

/** Starts the long turn and resolves once the page shows part of it (not all). */
async function midStream(page: Page): Promise<void> {
  await say(page, "tick-");
  await page.waitForFunction((selector) => ((globalThis as any).document.querySelector(selector)?.textContent ?? "").length >= 50, `${LAST_TURN} .md`, WAIT);
  expect((await agentText(page)).length).toBeLessThan(5 * REPEAT);
}

/** The turn finished on the page with the whole echo, once, in one agent message. */
async function wholeReplyOnce(page: Page): Promise<void> {
  await turnStatus(page, "done");
  expect(await agentText(page)).toBe("tick-".repeat(REPEAT));
  expect(await page.$$eval(".msg.user", (m) => m.length)).toBe(1);
  expect(await page.$$eval(".msg.agent", (m) => m.length)).toBe(1);
}

test("a dropped network mid-stream (connections cut, new ones refused for 1.5 s): the page shows it, reconnects by itself, the reply arrives whole and once", async () => {
  const { page, proxy } = await openPage(LONG_TURN, undefined, true, true);
  await midStream(page);
  proxy!.refuse = true;
  proxy!.cut();
  await page.waitForSelector('#conn[data-state="offline"]', WAIT);
  await Bun.sleep(1500);
  proxy!.refuse = false;
  expect(proxy!.refused).toBeGreaterThan(0); // the page tried while the network was down
  await page.waitForSelector('#conn[data-state="online"]', WAIT);
  await wholeReplyOnce(page);
}, 60_000);

test("asleep mid-stream (page frozen, its connection silent until the gateway drops it), then awake: the page reconnects and the reply arrives whole and once", async () => {
  // The gateway closes a socket that has been silent for ping_interval_s + ping_timeout_s (the minimum: 10 s).
  const { page, proxy } = await openPage({ ...LONG_TURN, ping_interval_s: 5, ping_timeout_s: 5 }, undefined, true, true);
  const cdp = await page.context().newCDPSession(page);
  await midStream(page);
  await cdp.send("Page.setWebLifecycleState", { state: "frozen" });
  const closedBefore = proxy!.targetClosed;
  proxy!.blackhole();
  for (let waited = 0; proxy!.targetClosed === closedBefore && waited < 20_000; waited += 100) await Bun.sleep(100);
  expect(proxy!.targetClosed).toBeGreaterThan(closedBefore);
  // Awake: the dead connection is reset by the network, the page runs again and connects anew.
  const acceptedAsleep = proxy!.accepted;
  proxy!.cut();
  await cdp.send("Page.setWebLifecycleState", { state: "active" });
  await page.waitForSelector('#conn[data-state="online"]', WAIT);
  await wholeReplyOnce(page);
  expect(proxy!.accepted).toBeGreaterThan(acceptedAsleep);
}, 60_000);
