/**
 * The command table: one entry per command with its summary, own flags, help
 * examples and a handler that is imported only when the command runs, so a
 * command that does not serve never loads the server. Adding a command is
 * adding one entry here and one file beside it.
 */
import type { Config } from "../config.ts";
import type { FlagSpec } from "./args.ts";

export interface CommandInput {
  /** Values of the command's own flags, by snake_case name. */
  flags: Record<string, string>;
  /** The merged configuration (defaults < file < env < config flags); rejects with the option at fault. */
  config: () => Promise<Config>;
}

export interface Command {
  summary: string;
  /** Flags of its own; config options come on top when takesConfig. */
  flags: FlagSpec[];
  examples: string[];
  /** Takes --config FILE and every config option as a flag. */
  takesConfig: boolean;
  /** The config options this command reads, shown in its help; undefined: all of them. */
  reads?: string[];
  run(input: CommandInput): Promise<void>;
}

const GATEWAY_ADDRESS = ["host", "port", "tcp_enabled", "unix_socket_path", "path", "ssl_certfile"];
const urlFlag: FlagSpec = { name: "url", value: "URL", help: "the gateway's base URL (http(s)://host:port or ws(s)://…); default: derived from the config" };
const caFlag: FlagSpec = { name: "ca", value: "FILE", help: "PEM CA certificate to trust for https:// (a private or self-signed certificate)" };

export const COMMANDS = {
  serve: {
    summary: "run the gateway (the default command)",
    flags: [],
    examples: ["agentgate", "agentgate serve --config /etc/agentgate.toml", "AGENTGATE_PORT=9000 agentgate --unix-socket-path=/run/agentgate.sock"],
    takesConfig: true,
    run: async ({ config }) => (await import("./serve.ts")).serve(await config()),
  },
  token: {
    summary: "mint a single-use client token from the running gateway (token-issue route, else bootstrap)",
    flags: [urlFlag, caFlag],
    examples: ["agentgate token", "agentgate token --url https://gw.example.com:8765 --ca ca.pem --token-issue-secret=$SECRET"],
    takesConfig: true,
    reads: [...GATEWAY_ADDRESS, "token_issue_path", "token_issue_secret", "token"],
    run: async ({ flags, config }) => (await import("./token.ts")).mintToken(await config(), flags),
  },
  chat: {
    summary: "talk to the running gateway from the terminal (/new, /stop, /sessions, /open ID); --once: stdin in, reply out",
    flags: [
      urlFlag,
      caFlag,
      { name: "token", value: "TOKEN", help: "a client token to use (default: a fresh one from the gateway per connect)" },
      { name: "once", help: "send stdin as one message, print the reply text only, exit" },
    ],
    examples: ['echo "hi" | agentgate chat --once', "agentgate chat", "agentgate chat --url http://127.0.0.1:8765 --token $TOKEN"],
    takesConfig: true,
    reads: [...GATEWAY_ADDRESS, "token_issue_path", "token_issue_secret", "token"],
    run: async ({ flags, config }) => (await import("./chat.ts")).chatCommand(await config(), flags),
  },
  gentoken: {
    summary: "mint a JWT (HS256) offline from jwt_secret, for a client or an API caller",
    flags: [
      { name: "sub", value: "NAME", help: "the token's subject (required)" },
      { name: "ttl", value: "SECONDS", help: "lifetime in seconds (default 3600)" },
    ],
    examples: ["agentgate gentoken --sub alice", "AGENTGATE_JWT_SECRET=… agentgate gentoken --sub ci --ttl 600"],
    takesConfig: true,
    reads: ["jwt_secret"],
    run: async ({ flags, config }) => (await import("./gentoken.ts")).genToken(await config(), flags),
  },
  genconfig: {
    summary: "print (or write) a commented config file with every option and fresh random secrets",
    flags: [
      { name: "format", value: "toml|json", help: "file format (default toml; json carries no comments)" },
      { name: "out", value: "FILE", help: "write to FILE (mode 0600, never overwriting) instead of stdout" },
    ],
    examples: ["agentgate genconfig > agentgate.toml", "agentgate genconfig --format json --out /etc/agentgate/config.json"],
    takesConfig: false,
    run: async ({ flags }) => (await import("./genconfig.ts")).genConfig(flags),
  },
  "check-config": {
    summary: "validate the configuration (and that stdio agent commands exist), print it with secrets masked",
    flags: [],
    examples: ["agentgate check-config --config agentgate.toml", "AGENTGATE_PORT=1 agentgate check-config"],
    takesConfig: true,
    run: async ({ config }) => (await import("./check-config.ts")).checkConfig(await config()),
  },
  schema: {
    summary: "write the protocol's JSON Schemas and AsyncAPI document, generated from the TypeBox definitions",
    flags: [{ name: "out", value: "DIR", help: "where to write (default docs/protocol)" }],
    examples: ["agentgate schema", "agentgate schema --out /tmp/protocol"],
    takesConfig: false,
    run: async ({ flags }) => (await import("./schema.ts")).writeSchemas(flags.out ?? "docs/protocol"),
  },
  health: {
    summary: "ask the running gateway for /health (or /ready); exit 0 when it answers 200 (for HEALTHCHECK)",
    flags: [urlFlag, caFlag, { name: "ready", help: "ask /ready (store, listeners, agents) instead of /health" }],
    examples: ["agentgate health", "agentgate health --ready --url http://127.0.0.1:8765"],
    takesConfig: true,
    reads: GATEWAY_ADDRESS,
    run: async ({ flags, config }) => (await import("./health.ts")).probeHealth(await config(), flags),
  },
  version: {
    summary: "print the version, commit and build date",
    flags: [],
    examples: ["agentgate version"],
    takesConfig: false,
    run: async () => (await import("./version.ts")).printVersion(),
  },
} satisfies Record<string, Command>;

export type CommandName = keyof typeof COMMANDS;
export const DEFAULT_COMMAND: CommandName = "serve";
