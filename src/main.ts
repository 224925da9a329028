#!/usr/bin/env bun
/**
 * The agentgate command line: serve (default), token, check-config, version.
 * Output meant for the user (URLs, tokens, the effective config) goes to stdout;
 * logs and errors go to stderr. Invalid config exits 1 with one line naming the option.
 */
import pkg from "../package.json";
import { type Config, ConfigError, connectableHost, describeOptions, readConfigFile, readEnv, redactConfig, resolveConfig } from "./config.ts";
import { type Gateway, startGateway } from "./gateway.ts";
import { createLogger } from "./log.ts";
import { protocolDocuments } from "./protocol/documents.ts";

const COMMANDS = {
  serve: "run the gateway (the default command)",
  token: "mint a single-use client token from the running gateway (token-issue route, else bootstrap)",
  "check-config": "validate the configuration and print it with secrets masked",
  version: "print the version",
  schema: "write the protocol's JSON Schemas and AsyncAPI document (--out DIR, default docs/protocol)",
} as const;
type Command = keyof typeof COMMANDS;

interface Cli {
  command: Command;
  help: boolean;
  configFile?: string;
  flags: Record<string, string>;
}

/** `--some-option=value`, `--some-option value`, or a bare `--some-option` meaning true. */
function parseArgs(argv: string[]): Cli {
  const cli: Cli = { command: "serve", help: false, flags: {} };
  let commandSeen = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h" || arg === "help") cli.help = true;
    else if (arg === "--version" || arg === "-v") cli.command = "version";
    else if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = (eq === -1 ? arg.slice(2) : arg.slice(2, eq)).replaceAll("-", "_");
      const next = argv[i + 1];
      const value = eq !== -1 ? arg.slice(eq + 1) : next !== undefined && !next.startsWith("--") ? (i++, next) : "true";
      if (name === "config") cli.configFile = value;
      else cli.flags[name] = value;
    } else if (!commandSeen && arg in COMMANDS) {
      cli.command = arg as Command;
      commandSeen = true;
    } else throw new ConfigError(`unknown argument: ${arg} (see agentgate --help)`);
  }
  return cli;
}

function usage(command: Command): string {
  const commands = Object.entries(COMMANDS).map(([name, what]) => `  ${name.padEnd(13)} ${what}`).join("\n");
  return [
    `agentgate ${pkg.version}: realtime gateway between AI agents and their clients`,
    "",
    `usage: agentgate ${command === "serve" ? "[serve]" : command} [--config FILE] [--option=value ...]`,
    "",
    "commands:",
    commands,
    "",
    "configuration: defaults < --config FILE (JSON or TOML) or AGENTGATE_CONFIG < env AGENTGATE_<OPTION> < flags",
    "options:",
    describeOptions(),
    "",
  ].join("\n");
}

async function loadConfig(cli: Cli): Promise<Config> {
  const file = cli.configFile ?? process.env.AGENTGATE_CONFIG;
  const fromFile = file ? await readConfigFile(file) : {};
  const { config, unknownKeys } = resolveConfig(fromFile, readEnv(process.env), cli.flags);
  for (const key of unknownKeys) process.stderr.write(`warning: unknown config option ignored: ${key}\n`);
  return config;
}

/** The unix-socket URL form Bun's WebSocket client accepts. */
const unixWsUrl = (socket: string, path: string) => `ws+unix://${socket}:${path}`;

function connectHints(gateway: Gateway): string[] {
  const { config, listeners } = gateway;
  const urls = listeners.map((l) => (l.transport === "tcp" ? l.address : unixWsUrl(l.address, config.path)));
  if (config.token) return urls.map((u) => `  ${u}?token=<your static token>`);
  if (!config.websocket_requires_token) return urls.map((u) => `  ${u}`);
  const lines = urls.map((u) => `  ${u}?token=${gateway.tokens.issue()}`);
  lines.push(`  (each token is single-use and expires in ${config.token_ttl_s} s)`);
  lines.push("  more tokens: agentgate token (same config)");
  return lines;
}

async function serve(config: Config): Promise<void> {
  const log = createLogger(config.log_level);
  const gateway = await startGateway(config, log);
  const where = gateway.listeners.map((l) => `  ${l.address}  (${l.transport === "tcp" ? "TCP" : "unix socket, mode 0600"})`);
  process.stdout.write(["agentgate listening on", ...where, "connect:", ...connectHints(gateway), ""].join("\n"));
  if (!config.token_issue_secret && !config.token && config.token_issue_path) {
    log.warn("token_issue_path is open: anyone who can reach it can mint client tokens");
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

/**
 * Asks the running gateway (over its unix socket when it has one) for an issued
 * token: from the token-issue route when configured, else from /webui/bootstrap
 * (which, without a secret, answers local peers only).
 */
async function mintToken(config: Config): Promise<void> {
  const route = config.token_issue_path || "/webui/bootstrap";
  const secret = config.token_issue_secret || config.token;
  const headers = secret ? { authorization: `Bearer ${secret}` } : undefined;
  const viaUnix = config.unix_socket_path !== "";
  const host = connectableHost(config);
  const base = viaUnix ? "http://localhost" : `${config.ssl_certfile ? "https" : "http"}://${host}:${config.port}`;
  let res: Response;
  try {
    res = await fetch(base + route, { headers, ...(viaUnix && { unix: config.unix_socket_path }) });
  } catch {
    throw new ConfigError(`token: no gateway answering at ${viaUnix ? config.unix_socket_path : base}`);
  }
  if (!res.ok) throw new ConfigError(`token: the gateway answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  const { token, expires_in } = (await res.json()) as { token: string; expires_in: number };
  const ws = viaUnix ? unixWsUrl(config.unix_socket_path, config.path) : `${config.ssl_certfile ? "wss" : "ws"}://${host}:${config.port}${config.path}`;
  process.stdout.write(`${token}\n`);
  process.stderr.write(`single-use, expires in ${expires_in} s; connect: ${ws}?token=${token}\n`);
}

/** `schema --out DIR`: the protocol documents, generated from the TypeBox schemas. */
async function writeSchemas(outDir: string): Promise<void> {
  const docs = protocolDocuments();
  for (const [path, text] of docs) await Bun.write(`${outDir}/${path}`, text);
  process.stdout.write(`wrote ${docs.size} protocol documents to ${outDir}\n`);
}

async function run(argv: string[]): Promise<void> {
  const cli = parseArgs(argv);
  if (cli.help) return void process.stdout.write(usage(cli.command));
  if (cli.command === "version") return void process.stdout.write(`agentgate ${pkg.version} (bun ${Bun.version})\n`);
  if (cli.command === "schema") return writeSchemas(cli.flags.out ?? "docs/protocol");
  const config = await loadConfig(cli);
  switch (cli.command) {
    case "check-config":
      return void process.stdout.write(`config ok\n${JSON.stringify(redactConfig(config), null, 2)}\n`);
    case "token":
      return mintToken(config);
    case "serve":
      return serve(config);
  }
}

// No top-level await: the bytecode-compiled binary is bundled as CommonJS.
run(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`agentgate: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
