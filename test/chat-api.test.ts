import { describe, expect, test } from "bun:test";
import { ackAndTurnEnd, isTurnEnd, startTestGateway, stdioAgentConfig, TestClient } from "./helpers.ts";

describe("client_msg_id", () => {
  test("a resend with the same id is acknowledged and not run twice; ids are per chat", async () => {
    const gw = await startTestGateway();
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    const chat_id = ready.chat_id;
    client.send({ type: "message", chat_id, content: "once", client_msg_id: "m-1" });
    // The ack follows the user event: it is sent once that event is durable.
    const turn = await ackAndTurnEnd(client);
    expect(turn.find((f) => f.event === "message_ack")).toEqual({ event: "message_ack", chat_id, client_msg_id: "m-1", duplicate: false });
    expect(turn[0]).toMatchObject({ event: "user", client_msg_id: "m-1" });
    expect(turn.findIndex((f) => f.event === "message_ack")).toBeGreaterThan(0);
    client.send({ type: "message", chat_id, content: "once", client_msg_id: "m-1" });
    expect(await client.next()).toEqual({ event: "message_ack", chat_id, client_msg_id: "m-1", duplicate: true });
    await client.expectQuiet();
    client.send({ type: "new_chat" });
    const other = (await client.next()).chat_id;
    await client.next();
    client.send({ type: "message", chat_id: other, content: "once", client_msg_id: "m-1" });
    expect((await client.until((f) => f.event === "message_ack")).at(-1)).toEqual({ event: "message_ack", chat_id: other, client_msg_id: "m-1", duplicate: false });
  });
});

describe("server publish API", () => {
  test("POST /api/chats/{id}/messages publishes into the chat; bad input is refused", async () => {
    const gw = await startTestGateway({ token: "t" });
    const { client, ready } = await TestClient.ready(gw.wsUrl("unix", { token: "t" }));
    const post = (path: string, body: unknown, token = "t") =>
      gw.http("tcp", path, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    const res = await post(`/api/chats/${ready.chat_id}/messages`, { text: "from the server", kind: "progress" });
    expect(await res.json()).toEqual({ chat_id: ready.chat_id, seq: 1 });
    expect(await client.next()).toEqual({ event: "message", chat_id: ready.chat_id, text: "from the server", kind: "progress", seq: 1 });
    expect((await post(`/api/chats/${ready.chat_id}/messages`, { text: "x" }, "wrong")).status).toBe(401);
    expect((await post("/api/chats/a.b/messages", { text: "x" })).status).toBe(400);
    expect((await post(`/api/chats/${ready.chat_id}/messages`, { text: "  " })).status).toBe(400);
    expect((await post(`/api/chats/${ready.chat_id}/messages`, { text: "x", kind: 3 })).status).toBe(400);
    expect((await post(`/api/chats/${ready.chat_id}/messages`, "not an object")).status).toBe(400);
  });

  test("POST /api/chats/{id}/stop cancels the running turn", async () => {
    const gw = await startTestGateway(stdioAgentConfig({ token: "t" }));
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp", { token: "t" }));
    client.send({ type: "message", chat_id: ready.chat_id, content: "slow" });
    await client.until((f) => f.event === "delta");
    const res = await gw.http("tcp", `/api/chats/${ready.chat_id}/stop`, { method: "POST", headers: { authorization: "Bearer t" } });
    expect(await res.json()).toEqual({ stopped: 1 });
    const rest = await client.until(isTurnEnd);
    expect(rest.find((f) => f.event === "message")?.text).toBe("Stopped 1 task(s).");
    expect(rest.find((f) => f.event === "turn_end")?.status).toBe("cancelled");
  });
});
