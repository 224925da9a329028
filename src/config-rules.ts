/**
 * The config's rules that are plain functions, and the start-up fast path that
 * applies them without zod (issue #16: loading zod and building the schema cost
 * more than everything else before the listeners bind).
 *
 * The zod schema in config.ts stays the one source of truth: it uses these
 * functions itself, and the catalog the fast path reads (each option's name,
 * help, default and kind of check) is derived from it (config.ts
 * `configCatalog`, embedded into the binary by build.ts). The fast path answers
 * only where its answer is the schema's by construction, a plain value of a
 * plain kind, and otherwise returns undefined so the schema decides, with its
 * own error message; test/config.test.ts checks the two agree.
 */
import { isLoopback, isUnspecified } from "./auth/address.ts";
import type { Config, OptionGroup } from "./config.ts";
import { expandHome } from "./expand-home.ts";

/** Env vars and flags arrive as strings: "false" must mean false, not a truthy string. Anything else is left for the schema to refuse. */
export function switchValue(v: unknown): unknown {
  if (typeof v !== "string") return v;
  const s = v.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(s)) return true;
  if (["0", "false", "no", "off"].includes(s)) return false;
  return v;
}

/** URL paths are compared after stripping trailing slashes (the root stays "/"). */
export function normalizePath(p: string): string {
  const stripped = p.replace(/\/+$/, "");
  return stripped === "" ? "/" : stripped;
}

/** The host a client on this machine connects to: wildcards (in any spelling) become loopback, IPv6 is bracketed. */
export function connectableHost(config: Pick<Config, "host">): string {
  if (isUnspecified(config.host)) return "127.0.0.1";
  const host = config.host.replace(/^\[(.*)\]$/, "$1");
  return host.includes(":") ? `[${host}]` : host;
}

/** A configured path: trimmed, `~` expanded. */
export const homePath = (p: string) => expandHome(p.trim());

/** The rules between options, checked once every option is valid; `fail` names the option at fault. */
export function crossCheck(c: Config, fail: (option: string, message: string) => void): void {
  const exposure = isUnspecified(c.host) ? "all interfaces" : "not loopback";
  if (!isLoopback(c.host) && !c.token && !c.token_issue_secret) {
    fail("host", `host is ${c.host} (${exposure}) but neither token nor token_issue_secret is set`);
  }
  if (!isLoopback(c.host) && !c.websocket_requires_token && !c.token) {
    fail("websocket_requires_token", `websocket_requires_token is false but host ${c.host} is ${exposure}: anyone who can reach it could connect`);
  }
  if (c.token_issue_path !== "" && c.token_issue_path === c.path) {
    fail("token_issue_path", "token_issue_path must differ from path (the WebSocket upgrade path)");
  }
  if (Boolean(c.ssl_certfile) !== Boolean(c.ssl_keyfile)) {
    fail("ssl_certfile", "ssl_certfile and ssl_keyfile must both be set for WSS, or both left empty");
  }
  if (!c.tcp_enabled && !c.unix_socket_path) {
    fail("tcp_enabled", "tcp_enabled is false and unix_socket_path is empty: nothing to listen on");
  }
  if (2 * c.replay_buffer_bytes > c.slow_consumer_bytes) {
    fail("replay_buffer_bytes", "replay_buffer_bytes must not exceed half of slow_consumer_bytes (a resume queues up to about twice it at once and would close itself)");
  }
  if (c.slow_consumer_bytes >= c.backpressure_limit_bytes) {
    fail("slow_consumer_bytes", "slow_consumer_bytes must be below backpressure_limit_bytes");
  }
  if (c.agent !== "echo" && !Object.hasOwn(c.agents, c.agent)) fail("agent", `agent "${c.agent}" is neither echo nor a name under agents`);
  if (Object.hasOwn(c.agents, "echo")) fail("agents", 'the name "echo" is the built-in agent');
  if (Object.values(c.agents).some((a) => a.type === "ws") && !c.agent_token) fail("agent_token", "agent_token must be set when a ws agent is configured");
  if (c.agent_path === c.path || c.agent_path === c.token_issue_path) fail("agent_path", "agent_path must differ from path and token_issue_path");
  if (c.jwt_secret && c.jwt_secret.length < 32) {
    fail("jwt_secret", "jwt_secret must be at least 32 characters");
  }
  // A rename or delete through one node reaches the others' local state through Redis.
  if (c.store_postgres_url && !c.cluster_redis_url) fail("store_postgres_url", "store_postgres_url needs cluster_redis_url (the nodes share chats through Redis)");
}

/**
 * How the fast path may check an option's value, tagged by the schema helper that built it
 * (config.ts): `schema` for every option it leaves to zod (refinements, transforms, structure).
 */
export type PlainCheck =
  | { kind: "int"; min: number; max: number }
  | { kind: "switch" }
  | { kind: "text" }
  | { kind: "one of"; values: readonly string[] }
  | { kind: "home path" }
  | { kind: "schema" };

/** One option as the command line and the fast path see it, derived from the schema. */
export interface CatalogOption {
  name: keyof Config;
  description: string;
  group: OptionGroup;
  check: PlainCheck;
  /** The default as a user would write it (data_dir unexpanded): what the schema makes of an absent value, but for home paths. */
  default: unknown;
}

/** A string zod's number coercion reads as exactly this safe integer: no sign, blanks, exponent or leading zero. */
const PLAIN_INT = /^(?:0|[1-9][0-9]{0,14})$/;

/** A default's own copy, as zod gives one (shallow): the config's lists must not be the catalog's. */
const freshCopy = (d: unknown) => (Array.isArray(d) ? [...d] : typeof d === "object" && d !== null ? { ...d } : d);

const SCHEMA_DECIDES = Symbol("the schema decides");

/** The schema's value for one present option, or SCHEMA_DECIDES where the value is not plain. */
function plainValue(check: PlainCheck, v: unknown): unknown {
  switch (check.kind) {
    case "int": {
      const n = typeof v === "string" && PLAIN_INT.test(v) ? Number(v) : v;
      return typeof n === "number" && Number.isSafeInteger(n) && n >= check.min && n <= check.max ? n : SCHEMA_DECIDES;
    }
    case "switch": {
      const b = switchValue(v);
      return typeof b === "boolean" ? b : SCHEMA_DECIDES;
    }
    case "text":
      return typeof v === "string" ? v : SCHEMA_DECIDES;
    case "one of":
      return typeof v === "string" && check.values.includes(v) ? v : SCHEMA_DECIDES;
    case "home path":
      return typeof v === "string" ? homePath(v) : SCHEMA_DECIDES;
    case "schema":
      return SCHEMA_DECIDES;
  }
}

/**
 * The config the schema would make of `merged` (known options only), or undefined when
 * that takes the schema: a present value that is not plain, or a rule between options broken.
 */
export function resolvePlainConfig(catalog: readonly CatalogOption[], merged: Record<string, unknown>): Config | undefined {
  const out: Record<string, unknown> = {};
  for (const option of catalog) {
    const v = merged[option.name];
    if (v === undefined) {
      out[option.name] = option.check.kind === "home path" ? homePath(option.default as string) : freshCopy(option.default);
      continue;
    }
    const value = plainValue(option.check, v);
    if (value === SCHEMA_DECIDES) return undefined;
    out[option.name] = value;
  }
  const config = out as Config;
  let broken = false;
  crossCheck(config, () => (broken = true));
  return broken ? undefined : config;
}
