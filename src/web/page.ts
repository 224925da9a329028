/**
 * Serves the built-in chat page at `/` (when no `webui_dir` is set): the HTML
 * shell and its two content-hashed assets under /_ui/, gzipped when the browser
 * accepts it. The page's own CSP is stricter than `webui_csp` (no inline style
 * either): everything it runs and styles comes from these two files.
 */
import { gzipSync } from "node:zlib";
import type { Handler } from "hono";
import { refusal } from "../http/refusal.ts";
import { IMMUTABLE, securityHeaders } from "../http/static-site.ts";
import { bundleWebUi, type WebBundle } from "./bundle.ts";

/** Set by build.ts in the compiled executable; absent when run from source. */
declare const AGENTGATE_WEB_BUNDLE: WebBundle;

export const WEB_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  type: string;
  body: Uint8Array;
  gzip: Uint8Array;
  cache: string;
  /** The shell is revalidated on every load (no-cache): a matching ETag answers 304 with no body. */
  etag: string;
}

function asset(type: string, text: string, cache: string): Asset {
  const body = new TextEncoder().encode(text);
  return { type, body, gzip: gzipSync(body, { level: 9 }), cache, etag: `W/"${Bun.hash(text).toString(36)}"` };
}

async function loadAssets(): Promise<Map<string, Asset>> {
  const bundle = typeof AGENTGATE_WEB_BUNDLE === "object" ? AGENTGATE_WEB_BUNDLE : await bundleWebUi();
  const hash = (text: string) => Bun.hash(text).toString(36);
  const jsPath = `/_ui/app.${hash(bundle.js)}.js`;
  const cssPath = `/_ui/app.${hash(bundle.css)}.css`;
  const html = bundle.html.replace("/_ui/app.js", jsPath).replace("/_ui/app.css", cssPath);
  return new Map([
    ["/", asset("text/html; charset=utf-8", html, "no-cache")],
    [jsPath, asset("text/javascript; charset=utf-8", bundle.js, IMMUTABLE)],
    [cssPath, asset("text/css; charset=utf-8", bundle.css, IMMUTABLE)],
  ]);
}

export function webPage(): Handler {
  let assets: Promise<Map<string, Asset>> | undefined;
  return async (c) => {
    assets ??= loadAssets();
    const found = (await assets).get(c.req.path);
    if (!found) return refusal(404, "Not Found", "no such page");
    if (c.req.header("if-none-match") === found.etag) return new Response(null, { status: 304, headers: { ETag: found.etag, "Cache-Control": found.cache } });
    const gzip = /\bgzip\b/.test(c.req.header("accept-encoding") ?? "");
    const body = gzip ? found.gzip : found.body;
    const headers: Record<string, string> = {
      "Content-Type": found.type,
      "Cache-Control": found.cache,
      "Content-Length": String(body.length),
      ...securityHeaders(WEB_PAGE_CSP),
      ETag: found.etag,
      Vary: "Accept-Encoding",
      ...(gzip && { "Content-Encoding": "gzip" }),
    };
    return new Response(c.req.method === "HEAD" ? null : body, { headers });
  };
}
