/**
 * The start-up floor for bench/startup.ts: the least a compiled Bun binary can do
 * to answer GET /health on --port=N. Built with the same compile options as
 * dist/agentgate, so the gateway's start-up is reported as a ratio to it.
 */
const port = Number(process.argv.find((a) => a.startsWith("--port="))?.slice("--port=".length));
Bun.serve({ hostname: "127.0.0.1", port, fetch: () => Response.json({ ok: true }) });
