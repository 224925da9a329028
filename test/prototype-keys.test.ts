/**
 * Lookups keyed by outside input must miss on Object.prototype names: a media
 * type, an access mode or an agent name of `constructor` or `__proto__` is
 * refused with its ordinary error, and the gateway stays up.
 */
import { describe, expect, test } from "bun:test";
import { ConfigError, resolveConfig } from "../src/config.ts";
import { startTestGateway, TestClient } from "./helpers.ts";

const PROTO_KEYS = ["constructor", "Constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"];

describe("prototype-named keys from clients", () => {
  test("data URLs with a prototype-named type are refused as mime; the socket and gateway stay up", async () => {
    const gw = await startTestGateway();
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    for (const mime of PROTO_KEYS) {
      client.send({ type: "message", chat_id: ready.chat_id, content: "x", media: [{ data_url: `data:${mime};base64,iVBORw0KGgoAAAAA` }] });
      expect(await client.next()).toEqual({ event: "error", detail: "image_rejected", reason: "mime", chat_id: ready.chat_id });
    }
    await client.expectQuiet();
  });

  test("an upload with a prototype-named Content-Type is 415 JSON", async () => {
    const gw = await startTestGateway({ token: "t" });
    for (const mime of PROTO_KEYS) {
      const res = await gw.http("tcp", "/api/media", { method: "POST", body: "abc", headers: { authorization: "Bearer t", "content-type": mime } });
      expect([res.status, await res.json()]).toEqual([415, { error: "image_rejected", reason: "mime" }]);
    }
    expect((await gw.http("tcp", "/health")).status).toBe(200);
  });

  test("a prototype-named access_mode is refused", async () => {
    const gw = await startTestGateway();
    const { client } = await TestClient.ready(gw.wsUrl("unix"));
    for (const mode of PROTO_KEYS) {
      client.send({ type: "set_workspace_scope", chat_id: "c1", workspace_scope: { project_path: gw.dir, access_mode: mode } });
      expect(await client.next()).toEqual({ event: "error", detail: "workspace_scope_rejected", reason: "access_mode must be restricted or full", chat_id: "c1" });
    }
  });

  test("a prototype-named default agent is not a configured agent", () => {
    for (const agent of PROTO_KEYS) expect(() => resolveConfig({ agent })).toThrow(ConfigError);
  });
});
