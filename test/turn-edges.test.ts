/**
 * Turns at their edges (issue #12): stop while a turn waits for its agent,
 * refused messages, tool calls scoped to their chat and answered only by a
 * capable attached device, and messages queued at shutdown.
 */
import { describe, expect, test } from "bun:test";
import { ackAndTurnEnd, type Frame, isTurnEnd, startTestGateway, stdioAgentConfig, TestClient } from "./helpers.ts";
import { chatServedByRemote, remoteAgentConfig } from "./remote-agent.ts";

/** Tests that start the Python agent get room for a slow machine (no timing is asserted). */
const PYTHON_AGENT_TEST_MS = 30_000;

describe("turn edges", () => {
  test("stop while the turn waits for a ws agent that is not connected ends it as cancelled at once", async () => {
    const gw = await startTestGateway(remoteAgentConfig({ agent_reconnect_grace_ms: 60_000, agent_cancel_grace_ms: 1500 }));
    const { client, chatId } = await chatServedByRemote(gw);
    client.send({ type: "message", chat_id: chatId, content: "anyone there?" });
    await client.until((f) => f.event === "goal_status" && f.status === "running");
    client.send({ type: "stop", chat_id: chatId });
    // Without the fix the turn would only end when the 60 s reconnect grace runs out.
    const frames = await client.until(isTurnEnd, 5000);
    expect(frames.find((f: Frame) => f.event === "turn_end")).toMatchObject({ status: "cancelled" });
    expect(frames.find((f: Frame) => f.event === "turn_end")).not.toHaveProperty("error");
  });

  test("stop while the turn waits for a stdio agent that is restarting ends it as cancelled at once", async () => {
    const gw = await startTestGateway(stdioAgentConfig({ agent_restart_backoff_ms: 20_000, agent_start_timeout_ms: 60_000 }));
    const { client, ready } = await TestClient.ready(gw.wsUrl("unix"));
    const chat_id = ready.chat_id;
    client.send({ type: "message", chat_id, content: "crash" });
    // The agent's first start can be slow on a loaded machine: wait as long as the test may run.
    expect((await client.until(isTurnEnd, PYTHON_AGENT_TEST_MS)).find((f: Frame) => f.event === "turn_end")).toMatchObject({ status: "error", error: "agent_exited" });
    client.send({ type: "message", chat_id, content: "are you back?" });
    await client.until((f) => f.event === "goal_status" && f.status === "running");
    client.send({ type: "stop", chat_id });
    expect((await client.until(isTurnEnd, 5000)).find((f: Frame) => f.event === "turn_end")).toMatchObject({ status: "cancelled" });
  }, 2 * PYTHON_AGENT_TEST_MS);
});

describe("device tool calls at their edges", () => {
  const agentSaw = (frames: Frame[]) => JSON.parse(frames.find((f) => f.event === "delta")!.text);

  test("two chats whose agents both use call_1 at once each get their own answer", async () => {
    const gw = await startTestGateway(stdioAgentConfig());
    const devices = [await TestClient.ready(gw.wsUrl("tcp", { capabilities: "camera" })), await TestClient.ready(gw.wsUrl("unix", { capabilities: "camera" }))];
    for (const { client, ready } of devices) client.send({ type: "message", chat_id: ready.chat_id, content: "tool camera 5000 call_1" });
    for (const { client } of devices) expect((await client.until((f) => f.event === "tool_request")).at(-1)).toMatchObject({ call_id: "call_1" });
    devices.forEach(({ client, ready }, i) => client.send({ type: "tool_result", chat_id: ready.chat_id, call_id: "call_1", ok: true, result: { device: i } }));
    for (const [i, { client }] of devices.entries()) expect(agentSaw(await client.until(isTurnEnd))).toEqual({ ok: true, result: { device: i } });
  }, PYTHON_AGENT_TEST_MS);

  test("only a connection attached to the chat that declared the tool may answer; others are refused and change nothing", async () => {
    const gw = await startTestGateway(stdioAgentConfig());
    const device = await TestClient.ready(gw.wsUrl("tcp", { capabilities: "camera" }));
    const chat_id = device.ready.chat_id;
    device.client.send({ type: "message", chat_id, content: "tool camera 5000 call_9" });
    await device.client.until((f) => f.event === "tool_request");
    const stranger = await TestClient.ready(gw.wsUrl("unix", { capabilities: "camera" }));
    const watcher = await TestClient.ready(gw.wsUrl("unix"));
    watcher.client.send({ type: "attach", chat_id });
    await watcher.client.next();
    const forged = { type: "tool_result", chat_id, call_id: "call_9", ok: true, result: "forged" };
    for (const { client } of [stranger, watcher]) {
      client.send(forged);
      expect((await client.until((f) => f.event === "error")).at(-1)).toMatchObject({ detail: "tool_result_rejected", chat_id });
    }
    device.client.send({ ...forged, result: "real" });
    const frames = await device.client.until(isTurnEnd);
    expect(frames.filter((f) => f.event === "tool_result")).toHaveLength(1);
    expect(agentSaw(frames)).toEqual({ ok: true, result: "real" });
  }, PYTHON_AGENT_TEST_MS);
});

test("a message refused with chat_busy is neither acknowledged nor remembered: its resend runs once the chat is free", async () => {
  const gw = await startTestGateway({ echo_chunk_size: 1, echo_delay_ms: 5, max_queued_turns: 2 });
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
  const chat_id = ready.chat_id;
  for (const content of ["x".repeat(2000), "queued one", "queued two"]) client.send({ type: "message", chat_id, content });
  client.send({ type: "message", chat_id, content: "refused", client_msg_id: "x" });
  const upToRefusal = await client.until((f) => f.event === "error");
  expect(upToRefusal.at(-1)).toEqual({ event: "error", detail: "chat_busy", chat_id });
  expect(upToRefusal.filter((f) => f.event === "message_ack")).toEqual([]);
  client.send({ type: "stop", chat_id });
  await client.until(isTurnEnd);
  client.send({ type: "message", chat_id, content: "refused", client_msg_id: "x" });
  const resent = await ackAndTurnEnd(client);
  expect(resent.find((f) => f.event === "message_ack")).toEqual({ event: "message_ack", chat_id, client_msg_id: "x", duplicate: false });
  expect(resent[0]).toMatchObject({ event: "user", text: "refused", client_msg_id: "x" });
});

test("a message queued behind a running turn at shutdown is closed with a visible turn_end error, live and after restart", async () => {
  const gw = await startTestGateway({ echo_chunk_size: 1, echo_delay_ms: 5 });
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
  const chat_id = ready.chat_id;
  client.send({ type: "message", chat_id, content: "x".repeat(2000) });
  client.send({ type: "message", chat_id, content: "queued at shutdown" });
  const queuedUser = (await client.until((f) => f.event === "user" && f.text === "queued at shutdown")).at(-1)!;
  const stopped = gw.stop();
  const live = await client.until((f) => f.event === "turn_end" && f.error === "gateway_shutdown");
  await stopped;
  const closing = live.slice(live.findLastIndex((f) => f.event === "goal_status" && f.status === "idle") + 1);
  expect(closing.map((f) => f.event)).toEqual(["message", "turn_end"]);
  expect(closing[0]!.text).toContain(`seq ${queuedUser.seq}`);
  expect(closing[1]).toMatchObject({ status: "error", error: "gateway_shutdown", goal_state: { active: false } });

  const again = await startTestGateway({ data_dir: gw.config.data_dir });
  const later = await TestClient.ready(again.wsUrl("unix"));
  later.client.send({ type: "attach", chat_id, since_seq: queuedUser.seq });
  const attached = await later.client.next();
  const replayed = await later.client.until((f) => f.seq === attached.latest_seq);
  expect(replayed.filter((f) => f.event === "turn_end").at(-1)).toMatchObject({ status: "error", error: "gateway_shutdown" });
  await later.client.expectQuiet();
});
