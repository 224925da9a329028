import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { isTurnEnd, sendTurn, startTestGateway, TestClient, upgradeRequest } from "./helpers.ts";
import { AGENT_TOKEN, chatServedByRemote, RemoteAgent, remoteAgentConfig as config } from "./remote-agent.ts";

describe("agents connecting over WebSocket", () => {
  test("an agent on the unix socket serves the chats routed to it", async () => {
    const gw = await startTestGateway(config());
    const agent = await RemoteAgent.connect(gw);
    const { client, chatId } = await chatServedByRemote(gw);
    client.send({ type: "message", chat_id: chatId, content: "hi remote" });
    const turn = await agent.next("turn");
    expect(turn).toMatchObject({ chat_id: chatId, content: "hi remote", media: [], metadata: expect.objectContaining({ client_id: expect.any(String) }) });
    agent.send({ type: "delta", turn_id: turn.turn_id, text: "hello " });
    agent.send({ type: "delta", turn_id: turn.turn_id, text: "from afar" });
    agent.send({ type: "stream_end", turn_id: turn.turn_id });
    agent.send({ type: "turn_end", turn_id: turn.turn_id, status: "done" });
    const frames = await client.until(isTurnEnd);
    expect(frames.filter((f) => f.event === "delta").map((f) => f.text).join("")).toBe("hello from afar");
    expect(frames.every((f) => f.turn_id === turn.turn_id || f.event === "user")).toBe(true);
  });

  test("the agent credential is required; a bad hello is closed; an unknown agent in new_chat is an error", async () => {
    const gw = await startTestGateway(config());
    expect((await upgradeRequest(gw, "unix", "/agent?token=wrong")).status).toBe(401);
    expect((await upgradeRequest(gw, "tcp", "/agent")).status).toBe(401);
    const ws = new WebSocket(`ws+unix://${join(gw.dir, "gw.sock")}:/agent?token=${AGENT_TOKEN}`);
    const closed = new Promise<number>((r) => ws.addEventListener("close", (e) => r(e.code)));
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "hello", agent: "stranger" })));
    expect(await closed).toBe(1008);
    const { client } = await TestClient.ready(gw.wsUrl("tcp"));
    client.send({ type: "new_chat", agent: "nobody" });
    expect(await client.next()).toEqual({ event: "error", detail: "unknown agent", reason: "nobody" });
  });

  test("a reconnecting agent continues its open turn within the grace", async () => {
    const gw = await startTestGateway(config({ agent_reconnect_grace_ms: 5000 }));
    const first = await RemoteAgent.connect(gw);
    const { client, chatId } = await chatServedByRemote(gw);
    client.send({ type: "message", chat_id: chatId, content: "long job" });
    const turn = await first.next("turn");
    first.send({ type: "delta", turn_id: turn.turn_id, text: "before " });
    await client.until((f) => f.event === "delta");
    first.ws.close();
    const second = await RemoteAgent.connect(gw);
    second.send({ type: "delta", turn_id: turn.turn_id, text: "after" });
    second.send({ type: "turn_end", turn_id: turn.turn_id, status: "done" });
    const rest = await client.until(isTurnEnd);
    expect(rest.find((f) => f.event === "delta")?.text).toBe("after");
    expect(rest.find((f) => f.event === "turn_end")?.status).toBe("done");
  });

  test("an agent that does not come back ends its open turns with agent_disconnected", async () => {
    const gw = await startTestGateway(config({ agent_reconnect_grace_ms: 150 }));
    const agent = await RemoteAgent.connect(gw);
    const { client, chatId } = await chatServedByRemote(gw);
    client.send({ type: "message", chat_id: chatId, content: "doomed" });
    await agent.next("turn");
    agent.ws.close();
    const frames = await client.until(isTurnEnd);
    expect(frames.find((f) => f.event === "turn_end")).toMatchObject({ status: "error", error: "agent_disconnected" });
    const later = await sendTurn(client, chatId, "nobody home");
    expect(later.find((f) => f.event === "turn_end")).toMatchObject({ status: "error", error: "agent_disconnected" });
  });
});
