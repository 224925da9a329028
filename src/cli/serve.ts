/**
 * `agentgate serve`: starts the gateway, prints where it listens with a
 * ready-to-paste URL, and shuts down in order on SIGINT/SIGTERM.
 */
import { checkAgentCommands } from "../agents/spawnable.ts";
import type { Config } from "../config.ts";
import type { Gateway } from "../gateway.ts";
import { bindListeners } from "../listen.ts";
import { createLogger } from "../log.ts";
import { unixWsUrl } from "./gateway-address.ts";
import { startupMark } from "../startup-trace.ts";

startupMark("serve loaded");

async function connectHints(gateway: Gateway): Promise<string[]> {
  const { config, listeners } = gateway;
  const urls = listeners.map((l) => (l.transport === "tcp" ? l.address : unixWsUrl(l.address, config.path)));
  if (config.token) return urls.map((u) => `  ${u}?token=<your static token>`);
  if (!config.websocket_requires_token) return urls.map((u) => `  ${u}`);
  // Through the same store the handshake consumes from (the cluster's Redis when clustered).
  const lines = await Promise.all(urls.map(async (u) => `  ${u}?token=${await gateway.wsTokens.issue()}`));
  lines.push(`  (each token is single-use and expires in ${config.token_ttl_s} s)`);
  lines.push("  more tokens: agentgate token (same config)");
  return lines;
}

/** A few event-loop turns: accepting, reading and answering a request take one each. Costs nothing when none waits. */
async function answerWaitingRequests(): Promise<void> {
  for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * The runtime's modules the server uses, and those they build on; in the compiled binary loading one
 * costs milliseconds (node:stream, node:util, node:fs, node:net the most). Loading is synchronous and a
 * liveness probe that comes meanwhile waits for it to end: they load one per event-loop turn, the
 * ones others need first, before the server's own modules. Only an order: one missing here loads with
 * the server.
 */
const RUNTIME_MODULES = [
  ...["node:path", "node:events", "node:buffer", "node:util", "node:stream"],
  ...["node:fs", "node:fs/promises", "node:crypto", "node:net", "node:stream/web", "node:zlib", "node:readline", "node:os", "bun:sqlite"],
];

export async function serve(config: Config): Promise<void> {
  startupMark("config loaded");
  checkAgentCommands(config);
  const log = createLogger(config.log_level, config.log_format);
  // Bound before the server loads: /health answers while the rest starts; /ready says when it is up.
  const bound = await bindListeners(config);
  startupMark("listening");
  // Loading the server's modules holds the event loop for tens of ms, and so does opening the store:
  // a liveness probe waiting on the new listener is answered before each runtime module, the server's
  // modules and the store, not after all of them.
  await answerWaitingRequests();
  for (const name of RUNTIME_MODULES) {
    require(name);
    startupMark(name);
    await answerWaitingRequests();
  }
  const { startGateway } = await import("../gateway.ts");
  await answerWaitingRequests();
  const gateway = await startGateway(config, log, bound);
  startupMark("gateway started");
  const where = gateway.listeners.map((l) => `  ${l.address}  (${l.transport === "tcp" ? "TCP" : "unix socket, mode 0600"})`);
  process.stdout.write(["agentgate listening on", ...where, "connect:", ...(await connectHints(gateway)), ""].join("\n"));
  if (!config.token_issue_secret && !config.token && config.token_issue_path) {
    log.warn("token_issue_path has no secret: it mints client tokens for any local peer (loopback, allowed Host, no untrusted proxy)");
  }
  if (!config.websocket_requires_token && !config.token) {
    log.warn("TOKEN-LESS MODE (websocket_requires_token=false): any local process, and any web page under an allowed origin, can open chats without a credential");
  }
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal });
    await gateway.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}
