/**
 * First paint of the built-in chat page (issue #15: under 100 ms from the binary
 * on loopback). Debian's chromium (playwright-core) loads http://127.0.0.1:<port>/
 * PAGE_RUNS times (10) from the compiled binary, each in a fresh browser context
 * (empty cache, no cookies or storage), and reads `first-paint` and
 * `first-contentful-paint` from performance.getEntriesByType("paint"), which count
 * from navigation start. The floor, in the same run, alternating load by load: a
 * bare Bun.serve (bench/raw-page-server.ts) serving the same HTML shell the binary
 * served, with its stylesheet and without its script.
 * Run alone: `BENCH_ONLY=page npm run bench` (builds dist/agentgate first when missing
 * or older than the page's sources).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { BUN, end, median, ROOT, type Running, spawn } from "./proc.ts";

const RUNS = Number(process.env.PAGE_RUNS ?? 10);
const BINARY = join(ROOT, "dist/agentgate");
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const DEADLINE_MS = 15_000;

interface Paint {
  firstPaint: number;
  firstContentfulPaint: number;
}

/** Builds dist/agentgate when it is missing or older than any file of the page (web/, src/web/). */
function ensureBinary(): void {
  const built = statSync(BINARY, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const sources = ["web", "src/web"].flatMap((dir) => readdirSync(join(ROOT, dir)).map((f) => join(ROOT, dir, f)));
  if (sources.every((file) => statSync(file).mtimeMs < built)) return;
  const build = Bun.spawnSync([BUN, "run", "build.ts"], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if (build.exitCode !== 0) throw new Error("build failed");
}

async function startBinary(dir: string): Promise<{ server: Running; base: string }> {
  const server = spawn([BINARY, "--port=0", `--data-dir=${join(dir, "data")}`, "--log-level=warn"]);
  for (;;) {
    const { line } = await server.lines.next("agentgate banner");
    const m = String(line).match(/ws:\/\/127\.0\.0\.1:(\d+)\//);
    if (m) return { server, base: `http://127.0.0.1:${m[1]}` };
  }
}

/** The shell and stylesheet exactly as the binary serves them, for the floor to serve; and the gzipped size of the page's JS + CSS. */
async function copyShell(base: string, dir: string): Promise<{ files: [string, string]; gzipBytes: number }> {
  const html = await (await fetch(`${base}/`)).text();
  const cssPath = html.match(/href="(\/_ui\/[^"]+\.css)"/)?.[1];
  const jsPath = html.match(/src="(\/_ui\/[^"]+\.js)"/)?.[1];
  if (!cssPath || !jsPath) throw new Error("the page names no stylesheet or no script");
  const gzipped = (path: string) => fetch(`${base}${path}`, { headers: { "accept-encoding": "gzip" }, decompress: false } as RequestInit).then((r) => r.arrayBuffer());
  const files: [string, string] = [join(dir, "shell.html"), join(dir, "shell.css")];
  await Bun.write(files[0], html);
  await Bun.write(files[1], await (await fetch(`${base}${cssPath}`)).text());
  const gzipBytes = (await gzipped(cssPath)).byteLength + (await gzipped(jsPath)).byteLength;
  return { files, gzipBytes };
}

/**
 * Runs in the page: both paint entries' start times once the browser has recorded
 * them, else null (keep waiting). A function, not a string: Playwright evaluates a
 * string predicate with eval, which the page's CSP refuses.
 */
function paintEntries(): Paint | null {
  const entries: { name: string; startTime: number }[] = (globalThis as any).performance.getEntriesByType("paint");
  const at = (name: string) => entries.find((e) => e.name === name)?.startTime;
  const firstPaint = at("first-paint");
  const firstContentfulPaint = at("first-contentful-paint");
  return firstPaint !== undefined && firstContentfulPaint !== undefined ? { firstPaint, firstContentfulPaint } : null;
}

/** One load in a fresh context: the paint entries once both are there. */
async function paintOnce(browser: Browser, url: string): Promise<Paint> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(url, { waitUntil: "load", timeout: DEADLINE_MS });
    const handle = await page.waitForFunction(paintEntries, undefined, { timeout: DEADLINE_MS });
    return (await handle.jsonValue()) as Paint;
  } finally {
    await context.close();
  }
}

export async function pageBench(): Promise<void> {
  ensureBinary();
  const dir = mkdtempSync(join(tmpdir(), "agentgate-page-"));
  const running: Running[] = [];
  let browser: Browser | undefined;
  try {
    const gateway = await startBinary(dir);
    running.push(gateway.server);
    const shell = await copyShell(gateway.base, dir);
    const raw = spawn([BUN, "bench/raw-page-server.ts", ...shell.files]);
    running.push(raw);
    const rawBase = `http://127.0.0.1:${(await raw.lines.next("raw page port")).line}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
    // One load of each before measuring: the browser's own first-navigation set-up is not the page's cost.
    await paintOnce(browser, `${rawBase}/`);
    await paintOnce(browser, `${gateway.base}/`);
    const results = { floor: [] as Paint[], agentgate: [] as Paint[] };
    for (let i = 0; i < RUNS; i++) {
      results.floor.push(await paintOnce(browser, `${rawBase}/`));
      results.agentgate.push(await paintOnce(browser, `${gateway.base}/`));
    }
    console.log(`\npage: first paint of / in headless chromium, fresh context per load, ${RUNS} loads each (ms from navigation start); JS + CSS ${shell.gzipBytes} B gzipped`);
    for (const side of ["floor", "agentgate"] as const) {
      const fp = results[side].map((p) => p.firstPaint);
      const fcp = results[side].map((p) => p.firstContentfulPaint);
      const label = side === "floor" ? "floor (bare Bun.serve, same shell, no script)" : "agentgate binary";
      console.log(`  ${label}`);
      console.log(`    first-paint median ${median(fp).toFixed(1)} ms (runs: ${fp.map((t) => t.toFixed(0)).join(", ")})`);
      console.log(`    first-contentful-paint median ${median(fcp).toFixed(1)} ms (runs: ${fcp.map((t) => t.toFixed(0)).join(", ")})`);
    }
    const ratio = median(results.agentgate.map((p) => p.firstPaint)) / median(results.floor.map((p) => p.firstPaint));
    console.log(`  first-paint agentgate/floor ${ratio.toFixed(2)}; target: agentgate under 100 ms`);
  } finally {
    await browser?.close();
    await Promise.all(running.map(end));
    rmSync(dir, { recursive: true, force: true });
  }
}
