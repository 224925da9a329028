/**
 * The command line as a user types it (issue #16): strict flags with a "did you
 * mean", genconfig, gentoken, version, check-config's agent check, and token/health
 * against a real gateway over TLS. Commands run as real child processes from source.
 */
import { describe, expect, test } from "bun:test";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../src/config.ts";
import { readConfigFile } from "../src/config-sources.ts";
import { BUN, REPO_ROOT, startTestGateway, TestClient, tempDir } from "./helpers.ts";

const MAIN = join(REPO_ROOT, "src/main.ts");
/** These tests start several processes each; on a loaded machine one start can take seconds. */
const SPAWNS_TIMEOUT_MS = 60_000;

/** Runs `agentgate ARGS` from source without blocking this process (an in-process gateway may have to answer). */
async function cli(args: string[], env: Record<string, string> = {}) {
  const dir = tempDir();
  const proc = Bun.spawn([BUN, MAIN, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? "", HOME: dir, ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

describe("strict parsing", () => {
  test("a mistyped flag or command exits 2 with one line naming the closest match; nothing starts", async () => {
    const [flag, command, own, missing] = await Promise.all([cli(["--prot=1"]), cli(["chek-config"]), cli(["gentoken", "--sbu=x"]), cli(["token", "--url"])]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toBe("agentgate: unknown option --prot for serve (did you mean --port?)\n");
    expect(flag.stdout).toBe("");
    expect(command.code).toBe(2);
    expect(command.stderr).toStartWith('agentgate: unknown command "chek-config" (did you mean check-config?)');
    expect(own.stderr).toContain("did you mean --sub?");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--url needs a value");
  }, SPAWNS_TIMEOUT_MS);

  test("boolean options stand alone or take true/false; values may follow with a space", async () => {
    const out = await cli(["check-config", "--streaming", "false", "--tcp-enabled", "--port", "7000", "--log_format=json"]);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout.slice("config ok\n".length))).toMatchObject({ streaming: false, tcp_enabled: true, port: 7000, log_format: "json" });
  }, SPAWNS_TIMEOUT_MS);
});

describe("genconfig", () => {
  test("TOML: every option commented with its env name, fresh secrets set, and it loads as the defaults plus the secrets", async () => {
    const [a, b] = await Promise.all([cli(["genconfig"]), cli(["genconfig", "--format=toml"])]);
    expect(a.code).toBe(0);
    expect(a.stdout).toContain("# env AGENTGATE_MAX_MESSAGE_BYTES\n# max_message_bytes = 37748736\n");
    expect(a.stdout).toContain("# ── media");
    const dir = tempDir();
    const file = join(dir, "agentgate.toml");
    writeFileSync(file, a.stdout);
    const { config, unknownKeys } = resolveConfig(await readConfigFile(file));
    expect(unknownKeys).toEqual([]);
    for (const secret of ["jwt_secret", "token_issue_secret", "agent_token"] as const) {
      expect(config[secret].length).toBeGreaterThanOrEqual(32);
      expect(b.stdout).not.toContain(config[secret]);
    }
    expect(config.token).toBe("");
    expect(config).toMatchObject({ ...resolveConfig({}).config, jwt_secret: config.jwt_secret, token_issue_secret: config.token_issue_secret, agent_token: config.agent_token });
  }, SPAWNS_TIMEOUT_MS);

  test("JSON to a file: mode 0600, never overwriting", async () => {
    const dir = tempDir();
    const file = join(dir, "config.json");
    const first = await cli(["genconfig", "--format", "json", "--out", file]);
    expect(first.code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const { config } = resolveConfig(await readConfigFile(file));
    expect(config.port).toBe(8765);
    expect(config.jwt_secret.length).toBeGreaterThanOrEqual(32);
    const again = await cli(["genconfig", "--format", "json", "--out", file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("cannot write");
    expect((await cli(["genconfig", "--format=yaml"])).code).toBe(2);
  }, SPAWNS_TIMEOUT_MS);
});

test("gentoken mints a JWT offline that the gateway accepts as a client token", async () => {
  const secret = "a-jwt-secret-that-is-long-enough-0123456789";
  const gw = await startTestGateway({ websocket_requires_token: true, jwt_secret: secret });
  const out = await cli(["gentoken", "--sub", "alice", "--ttl", "120"], { AGENTGATE_JWT_SECRET: secret });
  expect(out.code).toBe(0);
  const jwt = out.stdout.trim();
  expect(jwt.split(".")).toHaveLength(3);
  expect(out.stderr).toContain("sub alice");
  expect((await TestClient.ready(gw.wsUrl("tcp", { token: jwt }))).ready.event).toBe("ready");
  const refused = await upgradeStatus(gw.wsUrl("tcp", { token: `${jwt}x` }));
  expect(refused).toBe(401);
  expect((await cli(["gentoken", "--sub", "x"])).stderr).toContain("jwt_secret is not set");
  expect((await cli(["gentoken"], { AGENTGATE_JWT_SECRET: secret })).code).toBe(2);
}, SPAWNS_TIMEOUT_MS);

async function upgradeStatus(wsUrl: string): Promise<number> {
  const url = wsUrl.replace(/^ws/, "http");
  const res = await fetch(url, { headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" } });
  return res.status;
}

test("version from source prints the version, the git commit and says it was not built", async () => {
  const out = await cli(["version"]);
  const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: REPO_ROOT }).stdout.toString().trim();
  expect(out.stdout).toBe(`agentgate 0.1.0\ncommit ${head}\nbuilt (running from source)\nbun ${Bun.version}\n`);
  expect((await cli(["--version"])).stdout).toStartWith("agentgate 0.1.0\n");
}, SPAWNS_TIMEOUT_MS);

test("check-config names the stdio agent whose program cannot be found", async () => {
  const dir = tempDir();
  const agents = (command: string[]) => ["check-config", `--agents=${JSON.stringify({ helper: { type: "stdio", command } })}`, "--agent=helper"];
  const notExecutable = join(dir, "agent.sh");
  writeFileSync(notExecutable, "#!/bin/sh\n");
  const [missing, notRunnable, found] = await Promise.all([cli(agents(["python-that-does-not-exist", "x.py"])), cli(agents([notExecutable])), cli(agents(["python3", "x.py"]))]);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toBe('agentgate: invalid config: agents.helper.command: "python-that-does-not-exist" is not on PATH\n');
  expect(notRunnable.stderr).toContain(`agents.helper.command: ${notExecutable} does not exist or is not executable`);
  expect(found.code).toBe(0);
}, SPAWNS_TIMEOUT_MS);

describe("token and health against a TLS gateway", () => {
  test("the real TLS error is reported; --url with --ca mints a token and probes health", async () => {
    const dir = tempDir();
    const [cert, key] = [join(dir, "cert.pem"), join(dir, "key.pem")];
    const made = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]);
    expect(made.exitCode).toBe(0);
    const gw = await startTestGateway({ ssl_certfile: cert, ssl_keyfile: key, unix_socket_path: "", token_issue_path: "/auth/token", token_issue_secret: "issue-secret" });
    const url = `https://localhost:${gw.listeners[0]!.server.port}`;
    const env = { AGENTGATE_TOKEN_ISSUE_PATH: "/auth/token", AGENTGATE_TOKEN_ISSUE_SECRET: "issue-secret" };
    const untrusted = await cli(["token", "--url", url], env);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/cannot reach the gateway at https:\/\/localhost:\d+: .*(SELF_SIGNED|self.signed)/i);
    const minted = await cli(["token", "--url", url, "--ca", cert], env);
    expect(minted.code).toBe(0);
    expect(minted.stdout).toMatch(/^nbwt_/);
    expect(minted.stderr).toContain(`connect: wss://localhost:${gw.listeners[0]!.server.port}/?token=`);
    const health = await cli(["health", "--ready", "--url", url, "--ca", cert]);
    expect(health.code).toBe(0);
    expect(JSON.parse(health.stdout).ready).toBe(true);
  }, SPAWNS_TIMEOUT_MS);
});
