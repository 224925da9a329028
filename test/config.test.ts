import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, ConfigSchema, configCatalog, optionTable, plainCheckOf, resolveConfig, validateConfig } from "../src/config.ts";
import { type CatalogOption, resolvePlainConfig } from "../src/config-rules.ts";
import { readEnv } from "../src/config-sources.ts";
import { BUN, REPO_ROOT, tempDir } from "./helpers.ts";

const configError = (...sources: Record<string, unknown>[]) => {
  try {
    resolveConfig(...sources);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a config error");
};

function cli(args: string[], env: Record<string, string> = {}) {
  const dir = tempDir();
  const proc = Bun.spawnSync([BUN, join(REPO_ROOT, "src/main.ts"), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", HOME: dir, ...env },
  });
  return { code: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString(), dir };
}

describe("config schema (reference §1, §7.1 CFG-*)", () => {
  test("named agents are validated and defaulted (their schema is built on first use)", () => {
    const { config } = resolveConfig({ agents: '{"llm": {"type": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m"}}' });
    expect(config.agents.llm).toEqual({ type: "openai", base_url: "http://127.0.0.1:1/v1", model: "m", api_key_env: "OPENAI_API_KEY", timeout_ms: 300_000 });
    expect(configError({ agents: { llm: { type: "openai", base_url: "not a url", model: "m" } } })).toStartWith("invalid config: agents.llm.base_url: ");
    expect(configError({ agents: { x: { type: "carrier-pigeon" } } })).toStartWith("invalid config: agents.x.type: ");
  });

  test("defaults match nanobot's", () => {
    const { config } = resolveConfig({});
    expect(config).toMatchObject({
      host: "127.0.0.1",
      port: 8765,
      path: "/",
      token: "",
      token_issue_path: "",
      token_ttl_s: 300,
      websocket_requires_token: true,
      allow_from: ["*"],
      streaming: true,
      max_message_bytes: 36 * 1024 * 1024,
      ping_interval_s: 20,
      ping_timeout_s: 20,
      agent: "echo",
    });
    expect(config.data_dir).toEndWith("/.agentgate");
  });

  test.each([
    [{ path: "bad" }, 'invalid config: path: must start with "/"'],
    [{ path: "/ws", token_issue_path: "/ws/" }, "invalid config: token_issue_path: token_issue_path must differ from path"],
    [{ unix_socket_path: "engine.sock" }, "invalid config: unix_socket_path: unix_socket_path must be an absolute path"],
    [{ unix_socket_path: "/tmp/a\0b" }, "invalid config: unix_socket_path: must not contain NUL bytes"],
    [{ host: "0.0.0.0" }, "invalid config: host: host is 0.0.0.0 (all interfaces) but neither token nor token_issue_secret is set"],
    [{ host: "::" }, "invalid config: host: host is :: (all interfaces)"],
    [{ ssl_certfile: "/c.pem" }, "invalid config: ssl_certfile: ssl_certfile and ssl_keyfile must both be set"],
    [{ max_message_bytes: 41943041 }, "invalid config: max_message_bytes:"],
    [{ token_ttl_s: 1 }, "invalid config: token_ttl_s:"],
    [{ port: "http" }, "invalid config: port:"],
    [{ streaming: "maybe" }, "invalid config: streaming:"],
    [{ tcp_enabled: false }, "invalid config: tcp_enabled:"],
    [{ jwt_secret: "short" }, "invalid config: jwt_secret: jwt_secret must be at least 32 characters"],
  ])("%j is rejected naming the option", (input, message) => {
    expect(configError(input)).toStartWith(message);
  });

  test("wildcard host is fine with a token or an issue secret; paths are normalised", () => {
    expect(resolveConfig({ host: "0.0.0.0", token: "t" }).config.host).toBe("0.0.0.0");
    expect(resolveConfig({ host: "::", token_issue_secret: "s" }).config.host).toBe("::");
    expect(resolveConfig({ path: "/chat/", token_issue_path: "/auth//" }).config).toMatchObject({ path: "/chat", token_issue_path: "/auth" });
  });

  test("the flags that may stand alone are exactly the boolean options; every option has help text", () => {
    // optionFlags() tells them apart without parsing the defaults (start-up time); the defaults must agree.
    const options = optionTable();
    const switches = options.filter((o) => o.check.kind === "switch");
    expect(switches.map((o) => o.name)).toEqual(options.filter((o) => typeof o.default === "boolean").map((o) => o.name));
    expect(switches.length).toBeGreaterThan(3);
    expect(options.filter((o) => o.description.length < 10)).toEqual([]);
  });

  test("later sources win; strings from env and flags are coerced; unknown keys are reported", () => {
    const env = readEnv({ AGENTGATE_PORT: "9000", AGENTGATE_STREAMING: "false", AGENTGATE_ALLOW_FROM: "a, b", AGENTGATE_CONFIG: "/x", OTHER: "1" });
    const { config, unknownKeys } = resolveConfig({ port: 1, streaming: true, bogus: 1 }, env, { port: "9100" });
    expect(config.port).toBe(9100);
    expect(config.streaming).toBe(false);
    expect(config.allow_from).toEqual(["a", "b"]);
    expect(unknownKeys).toEqual(["bogus"]);
    expect(resolveConfig(readEnv({ AGENTGATE_ALLOW_FROM: '["x,y"]' })).config.allow_from).toEqual(["x,y"]);
  });

  test('a "__proto__" key in a config file is an unknown option, not a prototype that sets options', () => {
    const file = JSON.parse('{"__proto__": {"port": 1234, "host": "0.0.0.0"}}') as Record<string, unknown>;
    const { config, unknownKeys } = resolveConfig(file);
    expect(unknownKeys).toEqual(["__proto__"]);
    expect(config.port).toBe(resolveConfig().config.port);
    expect(config.host).toBe("127.0.0.1");
  });
});

/**
 * The start-up fast path (config-rules.ts) must give exactly the schema's config, or leave the
 * decision to the schema: never a config the schema would refuse or make differently.
 */
describe("the plain-value fast path agrees with the schema", () => {
  const catalog = configCatalog();

  test("a refinement added to an option's schema takes it off the fast path", () => {
    const field = ConfigSchema.shape.model_name;
    expect(plainCheckOf(field)).toBeDefined();
    expect(plainCheckOf(field.refine((v) => !v.includes(" ")))).toBeUndefined();
    expect(plainCheckOf(field.describe("x"))).toBeUndefined();
  });
  /** The schema's config for merged options, or the error it refuses them with. */
  const bySchema = (merged: Record<string, unknown>) => {
    try {
      return { config: validateConfig(merged) };
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return { error: (e as Error).message };
    }
  };
  /** The fast path's answer for `merged`, checked against the schema's; whether it answered. */
  const agrees = (merged: Record<string, unknown>): boolean => {
    const plain = resolvePlainConfig(catalog, structuredClone(merged));
    if (plain === undefined) return false;
    const schema = bySchema(structuredClone(merged));
    expect(schema.error).toBeUndefined();
    // Key order too: check-config prints the config as JSON.
    expect(JSON.stringify(plain)).toBe(JSON.stringify(schema.config));
    expect(plain).toEqual(schema.config!);
    return true;
  };
  const ofKind = (kind: CatalogOption["check"]["kind"]) => catalog.filter((o) => o.check.kind === kind);

  test("the defaults, and a config setting every plain option from strings (as env and flags give them), take the fast path", () => {
    expect(agrees({})).toBe(true);
    const every: Record<string, unknown> = {};
    for (const o of catalog) {
      const c = o.check;
      if (c.kind === "int") every[o.name] = String(c.max === o.default ? c.min : c.max);
      if (c.kind === "switch") every[o.name] = o.default ? "off" : "yes";
      if (c.kind === "text") every[o.name] = `${o.name}-value-that-is-at-least-32-characters-long`;
      if (c.kind === "one of") every[o.name] = c.values.at(-1);
      if (c.kind === "home path") every[o.name] = "~/elsewhere";
    }
    // Choices the rules between options ask for: loopback, a distinct agent name and paths that fit together.
    Object.assign(every, { host: "localhost", tcp_enabled: "on", agent: "echo", slow_consumer_bytes: "8388608", backpressure_limit_bytes: "16777216", replay_buffer_bytes: "1048576" });
    expect(agrees(every)).toBe(true);
    expect(agrees(Object.fromEntries(Object.entries(every).map(([k, v]) => [k, Number.isNaN(Number(v)) ? v : Number(v)])))).toBe(true);
    // Every option but the structured ones (lists, paths with rules, agents) can be plain.
    expect(ofKind("schema").map((o): string => o.name).sort()).toEqual(
      ["agent_path", "agents", "allow_from", "allowed_hosts", "allowed_origins", "cluster_key_prefix", "cluster_redis_url", "media_allowed_roots", "path", "store_postgres_url", "token_issue_path", "trusted_proxies", "unix_socket_path", "webui_dir"].sort(),
    );
  });

  test("each option's plain check is the schema's: a plain value is answered exactly when the schema accepts it", () => {
    /** A plain value for one option: the fast path answers (the same config) if and only if the schema accepts it. */
    const plainAlone = (name: string, v: unknown) => {
      const merged = { [name]: v };
      expect(agrees(merged)).toBe(bySchema(merged).config !== undefined);
    };
    for (const o of catalog) {
      const c = o.check;
      if (c.kind === "int") {
        for (const v of [c.min, c.max, String(c.min), String(c.max), o.default]) plainAlone(o.name, v);
        for (const v of [c.min - 1, c.max + 1, String(c.max + 1), c.min + 0.5]) {
          expect(resolvePlainConfig(catalog, { [o.name]: v })).toBeUndefined();
          expect(bySchema({ [o.name]: v }).error).toStartWith(`invalid config: ${o.name}: `);
        }
      }
      if (c.kind === "switch") for (const v of [true, false, "1", "TRUE", " yes ", "on", "0", "False", "no", "off"]) plainAlone(o.name, v);
      if (c.kind === "one of") for (const v of c.values) expect(agrees({ [o.name]: v })).toBe(true);
      if (c.kind === "text" || c.kind === "home path") for (const v of ["", " a b ", "/x/y", "~", "~/z", "127.0.0.2", "x".repeat(40)]) plainAlone(o.name, v);
    }
  });

  test("values that are not plain are left to the schema, which decides as before", () => {
    const [int] = ofKind("int");
    const [sw] = ofKind("switch");
    const [choice] = ofKind("one of");
    const [text] = ofKind("text");
    const odd: Record<string, unknown>[] = [
      ...[" 8", "08", "1e3", "0x10", "", "-1", "+5", "9".repeat(17), null, true, [], {}, Number.NaN].map((v) => ({ [int!.name]: v })),
      ...["maybe", "", 1, 0, null, []].map((v) => ({ [sw!.name]: v })),
      ...["INFO", "", 1, null].map((v) => ({ [choice!.name]: v })),
      ...[1, null, true, ["a"], {}].map((v) => ({ [text!.name]: v })),
      { data_dir: 5 },
      { path: "/chat" },
      { agents: "{}" },
      { unix_socket_path: "/tmp/x.sock" },
    ];
    for (const merged of odd) {
      expect(resolvePlainConfig(catalog, merged)).toBeUndefined();
      bySchema(merged);
    }
  });

  test("a config breaking a rule between options is left to the schema, which names the rule", () => {
    for (const merged of [{ host: "0.0.0.0" }, { host: "::" }, { ssl_certfile: "/c.pem" }, { tcp_enabled: "false" }, { jwt_secret: "short" }, { slow_consumer_bytes: "16777216" }, { agent: "nobody" }]) {
      expect(resolvePlainConfig(catalog, merged)).toBeUndefined();
      expect(bySchema(merged).error).toStartWith("invalid config: ");
    }
  });

  test("the fast path gives each config its own lists and objects, as the schema's defaults do", () => {
    const a = resolvePlainConfig(catalog, {})!;
    a.allow_from.push("mutated");
    (a.agents as Record<string, unknown>).x = {};
    expect(resolvePlainConfig(catalog, {})).toEqual(validateConfig({}));
    expect(catalog.find((o) => o.name === "allow_from")?.default).toEqual(["*"]);
  });
});

describe("CLI", () => {
  test("check-config merges file < env < flags and masks secrets", () => {
    const dir = tempDir();
    const file = join(dir, "agentgate.toml");
    writeFileSync(file, 'port = 7001\ntoken = "file-secret"\nunixSocketPath = "/tmp/x.sock"\nmystery = 1\n');
    const out = cli(["check-config", "--config", file, "--streaming=false"], { AGENTGATE_PORT: "7002" });
    expect(out.code).toBe(0);
    expect(out.stdout).toStartWith("config ok\n");
    const shown = JSON.parse(out.stdout.slice("config ok\n".length));
    expect(shown).toMatchObject({ port: 7002, streaming: false, token: "***", unix_socket_path: "/tmp/x.sock" });
    expect(out.stdout).not.toContain("file-secret");
    expect(out.stderr).toContain("warning: unknown config option ignored: mystery");
  });

  test("a retired option (the replay ring's) still starts the gateway from a flag, env or file, ignored with a warning that says why", () => {
    const dir = tempDir();
    const file = join(dir, "agentgate.json");
    writeFileSync(file, JSON.stringify({ replay_ring_bytes: 1024 }));
    const out = cli(["check-config", "--config", file, "--replay-ring-events=64"], { AGENTGATE_REPLAY_RING_TOTAL_BYTES: "4096" });
    expect(out.code).toBe(0);
    expect(out.stdout).not.toContain("replay_ring");
    for (const key of ["replay_ring_events", "replay_ring_bytes", "replay_ring_total_bytes"]) expect(out.stderr).toContain(`warning: retired config option ignored: ${key} (no replay ring any more`);
  });

  test("the cluster's URLs: Postgres needs Redis, both must be URLs of their kind, and check-config masks both (they may hold passwords)", () => {
    expect(configError({ store_postgres_url: "postgres://u:p@db/x" })).toContain("store_postgres_url needs cluster_redis_url");
    expect(configError({ cluster_redis_url: "redis://r", store_postgres_url: "mysql://db/x" })).toContain("store_postgres_url");
    const out = cli(["check-config", "--cluster-redis-url=redis://:redis-pass@r:6379", "--store-postgres-url=postgres://u:pg-pass@db/x"]);
    expect(out.code).toBe(0);
    const shown = JSON.parse(out.stdout.slice("config ok\n".length));
    expect(shown).toMatchObject({ cluster_redis_url: "***", store_postgres_url: "***" });
    expect(out.stdout).not.toContain("pass@");
  });

  test("invalid config exits 1 with one line naming the option and the rule", () => {
    // An unknown option is not warned about when the config is refused: the one line is the error.
    const out = cli(["serve", "--port=99999"], { AGENTGATE_MYSTERY: "1" });
    expect(out.code).toBe(1);
    expect(out.stderr.trim().split("\n")).toHaveLength(1);
    expect(out.stderr).toMatch(/^agentgate: invalid config: port: /);
    const json = cli(["check-config"], { AGENTGATE_PATH: "nope" });
    expect(json.code).toBe(1);
    expect(json.stderr).toBe('agentgate: invalid config: path: must start with "/"\n');
  });

  test("a config file that does not parse is an error naming the file and the line", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "bad.json"), '{\n  "port": 1,\n  nope\n}');
    const out = cli(["check-config", "--config", join(dir, "bad.json")]);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`cannot parse ${join(dir, "bad.json")} at line 3:`);
    writeFileSync(join(dir, "bad.toml"), 'port = 1\n\nallow_from = [\n  "a",\n]\nhost = = "x"\n');
    expect(cli(["check-config", "--config", join(dir, "bad.toml")]).stderr).toContain("at line 6:");
    writeFileSync(join(dir, "open.toml"), 'port = 1\nallow_from = [\n  "a",\n');
    expect(cli(["check-config", "--config", join(dir, "open.toml")]).stderr).toContain("at line 2:");
  }, 60_000);

  test("--help lists the commands; serve --help lists every option by group with default and env name", () => {
    const help = cli(["--help"]);
    expect(help.code).toBe(0);
    for (const word of ["serve", "token", "gentoken", "genconfig", "check-config", "health", "version"]) expect(help.stdout).toContain(word);
    const serve = cli(["serve", "--help"]).stdout;
    for (const word of ["listen options:", "--unix-socket-path", "--max-message-bytes", "(default 8765; env AGENTGATE_PORT)", "process options:", "--log-format"]) {
      expect(serve).toContain(word);
    }
    expect(cli(["token", "--help"]).stdout).toContain("usage: agentgate token");
    expect(cli(["help", "gentoken"]).stdout).toContain("agentgate gentoken --sub alice");
  }, 60_000);

  test("token with no gateway running reports the connection error and where it looked", () => {
    const out = cli(["token", "--port=1"]);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("cannot reach the gateway at http://127.0.0.1:1: ECONNREFUSED");
  }, 60_000);
});
