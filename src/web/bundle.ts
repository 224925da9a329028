/**
 * Bundles the built-in chat page (web/) into three strings: the HTML shell, one
 * minified ES module (the page plus the client SDK) and one stylesheet. build.ts
 * runs it once and embeds the result in the executable (a `define`); a gateway
 * run from source runs it on the first request instead, so both serve the same page.
 */
import { join } from "node:path";

export interface WebBundle {
  html: string;
  js: string;
  css: string;
}

const WEB_DIR = join(import.meta.dir, "../../web");

export async function bundleWebUi(): Promise<WebBundle> {
  const result = await Bun.build({
    entrypoints: [join(WEB_DIR, "main.ts")],
    target: "browser",
    format: "esm",
    minify: true,
  });
  if (!result.success) throw new AggregateError(result.logs, "bundling web/ failed");
  const text = (ext: string) => Promise.all(result.outputs.filter((o) => o.path.endsWith(ext)).map((o) => o.text())).then((t) => t.join("\n"));
  const [js, css, html] = await Promise.all([text(".js"), text(".css"), Bun.file(join(WEB_DIR, "index.html")).text()]);
  return { html, js, css };
}
