import { describe, expect, test } from "bun:test";
import { type Frame, sendTurn, startTestGateway, stdioAgentConfig, TestClient } from "./helpers.ts";

const events = (frames: Frame[]) => frames.map((f) => f.event);
const deltas = (frames: Frame[]) => frames.filter((f) => f.event === "delta").map((f) => f.text).join("");

describe("stdio agent (Python fixture)", () => {
  test("drives a full turn: reasoning, deltas, tool events, file edit", async () => {
    const gw = await startTestGateway(stdioAgentConfig());
    const { client, ready } = await TestClient.ready(gw.wsUrl("unix"));
    const frames = await sendTurn(client, ready.chat_id, "hello world");
    expect(events(frames)).toEqual([
      "user", "goal_status", "reasoning_delta", "reasoning_end", "delta", "delta", "delta", "delta", "stream_end", "message", "file_edit", "turn_end", "goal_status",
    ]);
    expect(frames[2]!.text).toBe("thinking about hello world");
    expect(deltas(frames)).toBe("hello world");
    expect(frames[9]).toMatchObject({ kind: "progress", text: "", tool_events: [{ name: "read_file", phase: "end", call_id: "c1" }] });
    expect(frames[10]!.edits).toEqual([expect.objectContaining({ path: "a.txt", status: "done" })]);
    expect(frames[11]).toMatchObject({ status: "done", goal_state: { active: false } });
    expect(frames.slice(1).every((f) => f.turn_id === frames[1]!.turn_id)).toBe(true);
  });

  test("an agent that crashes mid-turn ends the turn with error and is restarted", async () => {
    const gw = await startTestGateway(stdioAgentConfig());
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    const crashed = await sendTurn(client, ready.chat_id, "crash");
    expect(deltas(crashed)).toBe("about to crash");
    expect(crashed.find((f) => f.event === "message")?.text).toBe("Error: agent_exited");
    expect(crashed.find((f) => f.event === "turn_end")).toMatchObject({ status: "error", error: "agent_exited" });
    const after = await sendTurn(client, ready.chat_id, "again");
    expect(after.find((f) => f.event === "turn_end")?.status).toBe("done");
    expect(deltas(after)).toBe("again");
  });

  test("stop with a cooperative agent: it ends the turn as cancelled", async () => {
    const gw = await startTestGateway(stdioAgentConfig({ agent_cancel_grace_ms: 10_000 }));
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    client.send({ type: "message", chat_id: ready.chat_id, content: "slow" });
    await client.until((f) => f.event === "delta");
    const started = Date.now();
    client.send({ type: "stop", chat_id: ready.chat_id });
    const rest = await client.until((f) => f.event === "goal_status" && f.status === "idle");
    expect(rest.find((f) => f.event === "turn_end")?.status).toBe("cancelled");
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test("stop with an unresponsive agent: the gateway ends the turn after the grace and drops its late frames", async () => {
    const gw = await startTestGateway(stdioAgentConfig({ agent_cancel_grace_ms: 200 }));
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    client.send({ type: "message", chat_id: ready.chat_id, content: "deaf" });
    await client.until((f) => f.event === "delta");
    client.send({ content: "/stop" });
    const rest = await client.until((f) => f.event === "goal_status" && f.status === "idle");
    expect(rest.find((f) => f.event === "message")?.text).toBe("Stopped 1 task(s).");
    expect(rest.find((f) => f.event === "turn_end")?.status).toBe("cancelled");
    await Bun.sleep(100);
    await client.expectQuiet();
  });

  test("malformed frames are answered with errors and never reach clients", async () => {
    const gw = await startTestGateway(stdioAgentConfig());
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    const frames = await sendTurn(client, ready.chat_id, "bad");
    expect(frames.filter((f) => f.event === "delta").map((f) => f.text)).toEqual(["errors:invalid frame,invalid frame,invalid frame,unknown turn_id"]);
    expect(frames.find((f) => f.event === "turn_end")?.status).toBe("done");
  });

  test("outside a turn: proactive message, session title and model reach clients", async () => {
    const gw = await startTestGateway(stdioAgentConfig({ token: "t" }));
    const watcher = await TestClient.ready(gw.wsUrl("unix", { token: "t" }));
    const target = watcher.ready.chat_id;
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp", { token: "t" }));
    await sendTurn(client, ready.chat_id, `proactive ${target}`);
    const seen = await watcher.client.until((f) => f.event === "runtime_model_updated");
    expect(seen.map((f) => f.event)).toEqual(["message", "session_updated", "runtime_model_updated"]);
    expect(seen[0]).toEqual({ event: "message", chat_id: target, text: "unprompted hello", seq: 1 });
    expect(seen[1]).toMatchObject({ chat_id: target, scope: "metadata", title: "Named by agent" });
    expect(seen[2]).toEqual({ event: "runtime_model_updated", model_name: "py/agent-1", model_preset: "fast" });
    const list = (await (await gw.http("tcp", "/api/sessions?token=t")).json()) as { sessions: Frame[] };
    expect(list.sessions.find((s) => s.key === `websocket:${target}`)?.title).toBe("Named by agent");
  });
});
