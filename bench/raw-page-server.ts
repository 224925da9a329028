/**
 * The first-paint floor: a bare Bun.serve that answers every GET with the chat
 * page's own HTML shell (argv[2], a file), its script tag removed, and its
 * stylesheet (argv[3]) at the path the shell names. What this browser needs on
 * this machine to paint the same document with nothing else to do. Loopback only;
 * exits by itself.
 */
const [htmlFile, cssFile] = process.argv.slice(2) as [string, string];
const MAX_LIFETIME_MS = 10 * 60_000;
const html = (await Bun.file(htmlFile).text()).replace(/<script\b[^>]*><\/script>\n?/g, "");
const css = await Bun.file(cssFile).text();
const cssPath = html.match(/href="(\/_ui\/[^"]+\.css)"/)?.[1];
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req) {
    const path = new URL(req.url).pathname;
    if (path === cssPath) return new Response(css, { headers: { "Content-Type": "text/css; charset=utf-8" } });
    return new Response(html, { headers: { "Content-Type": "text/html; charset=utf-8" } });
  },
});
process.stdout.write(`${server.port}\n`);
setTimeout(() => process.exit(0), MAX_LIFETIME_MS).unref();
