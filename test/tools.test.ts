import { describe, expect, test } from "bun:test";
import { type Frame, isTurnEnd, startTestGateway, stdioAgentConfig, TestClient } from "./helpers.ts";

const agentSaw = (frames: Frame[]) => JSON.parse(frames.find((f) => f.event === "delta")!.text);

describe("device tool calls", () => {
  test("round trip: the capable device answers, the agent gets it, a second answer is refused", async () => {
    const gw = await startTestGateway(stdioAgentConfig());
    const { client, ready } = await TestClient.ready(gw.wsUrl("unix", { capabilities: "camera,gps" }));
    const chat_id = ready.chat_id;
    client.send({ type: "message", chat_id, content: "tool camera" });
    const [request] = (await client.until((f) => f.event === "tool_request")).slice(-1);
    // Read before asserting: bun's toMatchObject writes asymmetric matchers into the received object.
    const callId = request!.call_id as string;
    expect(callId).toStartWith("call-");
    expect(request).toMatchObject({ chat_id, tool: "camera", args: { q: 1 }, deadline_ms: 5000 });
    client.send({ type: "tool_result", chat_id, call_id: callId, ok: true, result: { photo: "x.png" } });
    const rest = await client.until(isTurnEnd);
    expect(rest.find((f) => f.event === "tool_result")).toMatchObject({ call_id: callId, ok: true, result: { photo: "x.png" } });
    expect(agentSaw(rest)).toEqual({ ok: true, result: { photo: "x.png" } });
    client.send({ type: "tool_result", chat_id, call_id: callId, ok: true, result: 2 });
    expect(await client.next()).toEqual({ event: "error", detail: "unknown call_id", reason: callId, chat_id });
  });

  test("no capable device: the agent is told at once", async () => {
    const gw = await startTestGateway(stdioAgentConfig());
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp", { capabilities: "gps" }));
    client.send({ type: "message", chat_id: ready.chat_id, content: "tool camera" });
    const frames = await client.until(isTurnEnd);
    expect(frames.find((f) => f.event === "tool_result")).toMatchObject({ ok: false, error: "no_capable_client" });
    expect(agentSaw(frames)).toEqual({ ok: false, error: "no_capable_client" });
  });

  test("a deadline passes without an answer", async () => {
    const gw = await startTestGateway(stdioAgentConfig());
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    client.send({ type: "attach", chat_id: ready.chat_id, capabilities: ["camera"] });
    await client.next();
    client.send({ type: "message", chat_id: ready.chat_id, content: "tool camera 150" });
    const frames = await client.until(isTurnEnd);
    expect(agentSaw(frames)).toEqual({ ok: false, error: "deadline_exceeded" });
  });

  test("the only capable device disconnects: after the grace the agent hears device_disconnected", async () => {
    const gw = await startTestGateway(stdioAgentConfig({ tool_disconnect_grace_ms: 100 }));
    const device = await TestClient.ready(gw.wsUrl("tcp", { capabilities: "camera" }));
    const chat_id = device.ready.chat_id;
    const watcher = await TestClient.ready(gw.wsUrl("unix"));
    watcher.client.send({ type: "attach", chat_id });
    await watcher.client.next();
    device.client.send({ type: "message", chat_id, content: "tool camera" });
    await device.client.until((f) => f.event === "tool_request");
    device.client.ws.close();
    const frames = await watcher.client.until(isTurnEnd);
    expect(frames.find((f) => f.event === "tool_result")).toMatchObject({ ok: false, error: "device_disconnected" });
    expect(agentSaw(frames)).toEqual({ ok: false, error: "device_disconnected" });
  });

  test("a reconnecting device sees the pending request in the replay and can still answer", async () => {
    const gw = await startTestGateway(stdioAgentConfig({ tool_disconnect_grace_ms: 5000 }));
    const first = await TestClient.ready(gw.wsUrl("tcp", { capabilities: "camera" }));
    const chat_id = first.ready.chat_id;
    first.client.send({ type: "message", chat_id, content: "tool camera" });
    await first.client.until((f) => f.event === "tool_request");
    first.client.ws.close();
    const again = await TestClient.ready(gw.wsUrl("unix", { capabilities: "camera" }));
    again.client.send({ type: "attach", chat_id, since_seq: 0 });
    const replay = await again.client.until((f) => f.event === "tool_request");
    const request = replay.at(-1)!;
    again.client.send({ type: "tool_result", chat_id, call_id: request.call_id, ok: false, error: "user declined" });
    expect(agentSaw(await again.client.until(isTurnEnd))).toEqual({ ok: false, error: "user declined" });
  });
});
