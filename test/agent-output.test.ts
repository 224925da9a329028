/**
 * Agent output outside and inside turns (issue #10): proactive messages go
 * through the same media staging and signing as in-turn ones, and a failure
 * while handling an agent frame is answered, not fatal.
 */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { isTurnEnd, startTestGateway, TestClient } from "./helpers.ts";
import { chatServedByRemote, RemoteAgent, remoteAgentConfig } from "./remote-agent.ts";

describe("agent output", () => {
  test("a store failure while handling an agent frame is answered with an error frame; agent and gateway stay up", async () => {
    const gw = await startTestGateway(remoteAgentConfig({ sqlite_busy_timeout_ms: 20 }));
    const agent = await RemoteAgent.connect(gw);
    const { client, chatId } = await chatServedByRemote(gw);
    // Another process holding the write lock: the gateway's next write fails with SQLITE_BUSY.
    const other = new Database(join(gw.config.data_dir, "agentgate.db"));
    other.exec("BEGIN IMMEDIATE");
    agent.send({ type: "session_update", chat_id: chatId, title: "while locked" });
    expect(await agent.next("error")).toMatchObject({ detail: "internal_error" });
    other.exec("ROLLBACK");
    other.close();
    agent.send({ type: "session_update", chat_id: chatId, title: "after the lock" });
    expect(await client.next()).toMatchObject({ event: "session_updated", title: "after the lock" });
    client.send({ type: "message", chat_id: chatId, content: "still there?" });
    const turn = await agent.next("turn");
    agent.send({ type: "turn_end", turn_id: turn.turn_id, status: "done" });
    expect((await client.until(isTurnEnd)).find((f) => f.event === "turn_end")).toMatchObject({ status: "done" });
  });
});
