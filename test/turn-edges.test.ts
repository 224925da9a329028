/**
 * Turns at their edges (issue #12): stop while a turn waits for its agent,
 * refused messages, tool calls scoped to their chat and answered only by a
 * capable attached device, and messages queued at shutdown.
 */
import { describe, expect, test } from "bun:test";
import { type Frame, isTurnEnd, startTestGateway, TestClient } from "./helpers.ts";
import { chatServedByRemote, remoteAgentConfig } from "./remote-agent.ts";

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
});
