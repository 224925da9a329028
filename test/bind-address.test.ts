/**
 * "Listening beyond loopback needs a credential" is decided on the parsed
 * address, so no spelling of the wildcard (or of a public address) slips by.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { AddressSet, isLoopback, isUnspecified } from "../src/auth/address.ts";
import { ConfigError, resolveConfig } from "../src/config.ts";
import { connectableHost } from "../src/config-rules.ts";
import { BUN, REPO_ROOT, spawnServe, tempDir } from "./helpers.ts";

const WILDCARDS = ["0", "0.0.0.0", "::", "::0", "0:0:0:0:0:0:0:0", "000.000.000.000", "0x0", "0.0", "[::]", "0x00000000"];
const LOOPBACK = ["127.0.0.1", "127.1", "0177.0.0.1", "0x7f.1", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "localhost"];
const OTHERS = ["192.168.1.10", "10.0.0.1", "fe80::1", "example.com", "128.0.0.1"];

describe("bind addresses", () => {
  test("every spelling of the wildcard is unspecified, none is loopback", () => {
    for (const host of WILDCARDS) expect([host, isUnspecified(host), isLoopback(host)]).toEqual([host, true, false]);
  });

  test("loopback spellings are loopback; other addresses and names are not", () => {
    for (const host of LOOPBACK) expect([host, isLoopback(host)]).toEqual([host, true]);
    for (const host of OTHERS) expect([host, isLoopback(host), isUnspecified(host)]).toEqual([host, false, false]);
  });

  test("a wildcard or non-loopback bind without a token or issue secret is refused", () => {
    for (const host of [...WILDCARDS, ...OTHERS]) {
      expect(() => resolveConfig({ host })).toThrow(ConfigError);
      expect(resolveConfig({ host, token: "t" }).config.host).toBe(host);
    }
    for (const host of LOOPBACK) expect(resolveConfig({ host }).config.host).toBe(host);
  });

  test("token-less WebSocket mode is refused beyond loopback, even with an issue secret", () => {
    for (const host of ["0", "::0", "192.168.1.10"]) {
      expect(() => resolveConfig({ host, token_issue_secret: "s", websocket_requires_token: false })).toThrow(/websocket_requires_token/);
    }
    expect(resolveConfig({ host: "127.0.0.1", websocket_requires_token: false }).config.websocket_requires_token).toBe(false);
  });

  test("connectableHost turns every wildcard spelling into loopback and brackets IPv6", () => {
    for (const host of WILDCARDS) expect(connectableHost({ host })).toBe("127.0.0.1");
    expect(connectableHost({ host: "::1" })).toBe("[::1]");
    expect(connectableHost({ host: "[::1]" })).toBe("[::1]");
    expect(connectableHost({ host: "10.0.0.1" })).toBe("10.0.0.1");
  });

  test("trusted_proxies takes addresses and CIDRs, IPv4-mapped peers match, junk is refused", () => {
    const set = new AddressSet(["10.0.0.0/8", "::1", "192.168.1.5"]);
    expect(["10.2.3.4", "::ffff:10.2.3.4", "::1", "192.168.1.5"].map((a) => set.has(a))).toEqual([true, true, true, true]);
    expect(["11.0.0.1", "127.0.0.1", "192.168.1.6"].map((a) => set.has(a))).toEqual([false, false, false]);
    expect(resolveConfig({ trusted_proxies: "10.0.0.0/8,unix" }).config.trusted_proxies).toEqual(["10.0.0.0/8", "unix"]);
    for (const bad of ["proxy.local", "10.0.0.0/99", "1.2.3.4/x"]) expect(() => resolveConfig({ trusted_proxies: [bad] })).toThrow(/trusted_proxies/);
  });
});

test("token-less mode warns loudly at start", async () => {
  const cwd = tempDir();
  const sock = join(cwd, "gw.sock");
  const { proc } = await spawnServe([BUN, join(REPO_ROOT, "src/main.ts"), "--tcp-enabled=false", `--unix-socket-path=${sock}`, "--websocket-requires-token=false", "--data-dir=data"], cwd);
  const reader = proc.stderr.getReader();
  let stderr = "";
  const deadline = Date.now() + 10_000;
  while (!stderr.includes("TOKEN-LESS MODE") && Date.now() < deadline) {
    const { value, done } = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => ({ value: undefined, done: true }))]);
    if (done) break;
    stderr += new TextDecoder().decode(value);
  }
  expect(stderr).toContain("TOKEN-LESS MODE (websocket_requires_token=false)");
});
