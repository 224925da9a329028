import { describe, expect, test } from "bun:test";
import { parseInbound } from "../src/protocol/client.ts";
import { type Frame, isTurnEnd, startTestGateway, TestClient, TRANSPORTS, upgradeRequest } from "./helpers.ts";

describe("parseInbound (reference §3.1, §7.1 ENV-P1/LEG-P1)", () => {
  test.each([
    ["plain", "plain"],
    ['{"content":"hi"}', "hi"],
    ['{"text":"there"}', "there"],
    ['{"message":"x"}', "x"],
    ['{"content":"  ","text":"second"}', "second"],
    ["{not json", "{not json"],
    ['["hello"]', '["hello"]'],
  ])("legacy %p delivers %p", (raw, content) => {
    expect(parseInbound(raw)).toEqual({ kind: "legacy", content });
  });

  test.each(["   ", "{}", '{"content":""}', '{"content":"  "}', '{"content":123}', '{"content":null}', '{"unknown_key":"val"}', '{"type":123}'])(
    "%p is ignored",
    (raw) => expect(parseInbound(raw)).toEqual({ kind: "ignored" }),
  );

  test("an object with a string type is an envelope, even padded", () => {
    expect(parseInbound('  {"type": "new_chat"}  ')).toEqual({ kind: "envelope", envelope: { type: "new_chat" } });
  });

  test.each([
    ["", false],
    ["x".repeat(65), false],
    ["has space", false],
    ["a/b", false],
    ["a.b", false],
    ["../escape", false],
    ["chat\nid", false],
    ["abc", true],
    ["a1b2_c:d-e", true],
    ["x".repeat(64), true],
    ["unified:default", true],
  ])("chat_id %p valid=%p", (chatId, valid) => {
    const got = parseInbound(JSON.stringify({ type: "attach", chat_id: chatId }));
    expect(got.kind).toBe(valid ? "envelope" : "invalid");
  });

  test("unknown types are named with Python quoting", () => {
    expect(parseInbound('{"type":"nope"}')).toEqual({ kind: "invalid", error: { detail: "unknown type: 'nope'" } });
    expect(parseInbound(`{"type":"it's"}`)).toEqual({ kind: "invalid", error: { detail: `unknown type: "it's"` } });
  });
});

for (const transport of TRANSPORTS) {
  describe(`client protocol over ${transport}`, () => {
    test("ready comes first with a uuid chat_id and the client_id", async () => {
      const gw = await startTestGateway();
      const { ready } = await TestClient.ready(gw.wsUrl(transport, { client_id: "tester" }));
      expect(ready).toEqual({ event: "ready", chat_id: expect.stringMatching(/^[0-9a-f-]{36}$/), client_id: "tester" });
    });

    test("absent client_id becomes anon-<12 hex>; long ones are cut to 128", async () => {
      const gw = await startTestGateway();
      const a = await TestClient.ready(gw.wsUrl(transport));
      expect(a.ready.client_id).toMatch(/^anon-[0-9a-f]{12}$/);
      const b = await TestClient.ready(gw.wsUrl(transport, { client_id: "x".repeat(200) }));
      expect(b.ready.client_id).toBe("x".repeat(128));
      expect(b.ready.chat_id).not.toBe(a.ready.chat_id);
    });

    test("envelope errors use nanobot's strings, carry chat_id when known, and keep the socket open", async () => {
      const gw = await startTestGateway();
      const { client } = await TestClient.ready(gw.wsUrl(transport));
      const cases: [object, Frame][] = [
        [{ type: "attach", chat_id: "has space" }, { event: "error", detail: "invalid chat_id" }],
        [{ type: "message", chat_id: "a/b", content: "x" }, { event: "error", detail: "invalid chat_id" }],
        [{ type: "message", chat_id: "c1", content: 42 }, { event: "error", detail: "missing content", chat_id: "c1" }],
        [{ type: "message", chat_id: "c1" }, { event: "error", detail: "missing content", chat_id: "c1" }],
        [{ type: "message", chat_id: "c1", content: "   " }, { event: "error", detail: "missing content", chat_id: "c1" }],
        [{ type: "message", chat_id: "c1", content: "x", media: "nope" }, { event: "error", detail: "image_rejected", reason: "malformed", chat_id: "c1" }],
        [{ type: "attach", chat_id: "c1", since_seq: -1 }, { event: "error", detail: "invalid since_seq", chat_id: "c1" }],
        [{ type: "nope" }, { event: "error", detail: "unknown type: 'nope'" }],
        [{ type: "set_workspace_scope", chat_id: "c1", workspace_scope: "x" }, { event: "error", detail: "workspace_scope_rejected", reason: "workspace_scope must be an object", chat_id: "c1" }],
        [{ type: "set_workspace_scope", chat_id: "c1", workspace_scope: { project_path: "rel/dir" } }, { event: "error", detail: "workspace_scope_rejected", reason: "project_path must be absolute", chat_id: "c1" }],
        [{ type: "set_workspace_scope", chat_id: "c1", workspace_scope: { project_path: "/no/such/dir" } }, { event: "error", detail: "workspace_scope_rejected", reason: "project_path must be an existing directory", chat_id: "c1" }],
        [{ type: "set_workspace_scope", chat_id: "c1", workspace_scope: { project_path: "/tmp", access_mode: "root" } }, { event: "error", detail: "workspace_scope_rejected", reason: "access_mode must be restricted or full", chat_id: "c1" }],
      ];
      for (const [frame, expected] of cases) {
        client.send(frame);
        expect(await client.next()).toEqual(expected);
      }
      client.send("still-alive");
      const frames = await client.until(isTurnEnd);
      expect(frames.filter((f) => f.event === "delta").map((f) => f.text).join("")).toBe("still-alive");
    });

    test("ping is answered with pong", async () => {
      const gw = await startTestGateway();
      const { client } = await TestClient.ready(gw.wsUrl(transport));
      client.send({ type: "ping" });
      expect(await client.next()).toEqual({ event: "pong" });
    });

    test("legacy frames go to the default chat; blank ones are ignored", async () => {
      const gw = await startTestGateway();
      const { client, ready } = await TestClient.ready(gw.wsUrl(transport));
      client.send("   ");
      client.send("{}");
      client.send({ text: "via text" });
      const frames = await client.until(isTurnEnd);
      expect(frames.every((f) => f.chat_id === ready.chat_id)).toBe(true);
      expect(frames.filter((f) => f.event === "delta").map((f) => f.text).join("")).toBe("via text");
    });

    test("binary frames are read as UTF-8; invalid UTF-8 is ignored and the socket stays up", async () => {
      const gw = await startTestGateway();
      const { client } = await TestClient.ready(gw.wsUrl(transport));
      client.ws.send(new Uint8Array([0xff, 0xfe, 0xfd]));
      client.ws.send(new TextEncoder().encode("你好世界 🌍"));
      const frames = await client.until(isTurnEnd);
      expect(frames.filter((f) => f.event === "delta").map((f) => f.text).join("")).toBe("你好世界 🌍");
      await client.expectQuiet();
    });

    test("a frame over max_message_bytes closes the socket with 1009", async () => {
      const gw = await startTestGateway({ max_message_bytes: 1024 });
      const { client } = await TestClient.ready(gw.wsUrl(transport));
      client.send("x".repeat(1025));
      expect((await client.closed).code).toBe(1009);
      const again = await TestClient.ready(gw.wsUrl(transport));
      expect(again.ready.event).toBe("ready");
    });

    test("new_chat answers attached then session_updated; attach reports the latest seq", async () => {
      const gw = await startTestGateway();
      const { client } = await TestClient.ready(gw.wsUrl(transport));
      client.send({ type: "new_chat" });
      const attached = await client.next();
      expect(attached).toEqual({ event: "attached", chat_id: expect.any(String), latest_seq: 0 });
      expect(await client.next()).toEqual({ event: "session_updated", chat_id: attached.chat_id, scope: "metadata", seq: 1 });
      const other = await TestClient.ready(gw.wsUrl(transport));
      other.client.send({ type: "attach", chat_id: attached.chat_id });
      expect(await other.client.next()).toEqual({ event: "attached", chat_id: attached.chat_id, latest_seq: 1 });
    });

    test("a workspace scope is validated, stored and echoed", async () => {
      const gw = await startTestGateway();
      const { client } = await TestClient.ready(gw.wsUrl(transport));
      client.send({ type: "new_chat", workspace_scope: { project_path: gw.dir, access_mode: "full_access" } });
      const attached = await client.next();
      const updated = await client.next();
      expect(updated.workspace_scope).toMatchObject({ project_path: gw.dir, access_mode: "full", restrict_to_workspace: false });
      client.send({ type: "set_workspace_scope", chat_id: attached.chat_id, workspace_scope: { project_path: gw.dir } });
      expect((await client.next()).workspace_scope).toMatchObject({ access_mode: "restricted" });
    });

    test("an upgrade to another path is 404; a trailing slash on the path is tolerated", async () => {
      const gw = await startTestGateway({ path: "/ws" });
      expect((await upgradeRequest(gw, transport, "/other")).status).toBe(404);
      const { ready } = await TestClient.ready(gw.wsUrl(transport).replace("/ws", "/ws/"));
      expect(ready.event).toBe("ready");
    });
  });
}

test("TCP peers off loopback may not change workspace scope; loopback and unix peers may", async () => {
  const { TrustPolicy } = await import("../src/auth/peer.ts");
  const trust = new TrustPolicy({ allowed_hosts: [], allowed_origins: [], trusted_proxies: [], ssl_certfile: "" });
  const local = (address: string | undefined) => trust.peer(new Request("http://localhost/"), address).local;
  expect([local("203.0.113.8"), local("::ffff:127.0.0.1"), local("::1"), local(undefined)]).toEqual([false, true, true, true]);
});
