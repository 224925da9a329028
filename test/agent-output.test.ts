/**
 * Agent output outside and inside turns (issue #10): proactive messages go
 * through the same media staging and signing as in-turn ones, and a failure
 * while handling an agent frame is answered, not fatal.
 */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { isTurnEnd, startTestGateway, TestClient, tempDir } from "./helpers.ts";
import { chatServedByRemote, RemoteAgent, remoteAgentConfig } from "./remote-agent.ts";
import { PNG_BYTES } from "./test-data.ts";


describe("agent output", () => {
  test("a proactive message's media and markdown images are staged and signed like in-turn ones; no server path reaches clients", async () => {
    const workspace = tempDir();
    const chart = join(workspace, "chart.png");
    writeFileSync(chart, PNG_BYTES);
    const gw = await startTestGateway(remoteAgentConfig({ media_allowed_roots: [workspace] }));
    const agent = await RemoteAgent.connect(gw);
    const { client, chatId } = await chatServedByRemote(gw);
    agent.send({ type: "message", chat_id: chatId, text: `unprompted ![chart](${chart}) and ![secret](/etc/hostname.png)`, media: [chart, "/etc/hostname"] });
    agent.send({ type: "session_update", chat_id: chatId, title: "after the message" });
    const message = await client.next();
    // Read before asserting: bun's toMatchObject writes asymmetric matchers into the received object.
    const url = message.media_urls?.[0]?.url as string;
    expect(message).toMatchObject({ event: "message", chat_id: chatId, media_urls: [{ url: expect.stringMatching(/^\/api\/media\//), name: "chart.png" }] });
    expect(message.text).toMatch(/^unprompted !\[chart\]\(\/api\/media\/[\w-]{22}\/[\w-]+\) and secret$/);
    expect(JSON.stringify(message)).not.toContain(workspace);
    expect(JSON.stringify(message)).not.toContain("/etc/hostname");
    expect(message).not.toHaveProperty("private");
    expect((await gw.http("tcp", url)).status).toBe(200);
    expect(await client.next()).toMatchObject({ event: "session_updated", title: "after the message" });
  });

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
