/**
 * A storage error while a client frame is handled must not end the process: the
 * sender gets an error event, its connection stays up, and other chats keep
 * streaming. The store is failed for real: the test takes SQLite's write lock on
 * the gateway's own database file, so the gateway's writes fail with SQLITE_BUSY.
 * Clients' and agents' sockets share that one boundary (src/connections.ts): a
 * failed open is closed with 1011, a failed agent frame answered with an error
 * frame, each logged once; failed here by a log sink that throws.
 */
import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { createLogger } from "../src/log.ts";
import { CLOSE_INTERNAL_ERROR, FRAME_NOT_HANDLED, INTERNAL_ERROR } from "../src/protocol/errors.ts";
import { isTurnEnd, startTestGateway, TestClient, tempDir } from "./helpers.ts";
import { chatServedByRemote, RemoteAgent, remoteAgentConfig } from "./remote-agent.ts";

test("a failing store answers the frame with an error event; the gateway and other chats keep going", async () => {
  const gw = await startTestGateway({ sqlite_busy_timeout_ms: 10, echo_chunk_size: 1, echo_delay_ms: 2 });
  const streaming = (await TestClient.ready(gw.wsUrl("tcp"))).client;
  const { client: victim, ready } = await TestClient.ready(gw.wsUrl("unix"));

  // A long turn in another chat, started (and its seqs reserved) before the store fails.
  streaming.send({ type: "new_chat" });
  const chatId = (await streaming.until((f) => f.event === "attached")).at(-1)!.chat_id as string;
  streaming.send({ type: "message", chat_id: chatId, content: "x".repeat(300) });
  await streaming.until((f) => f.event === "delta");

  const db = new Database(join(gw.dir, "data", "agentgate.db"));
  db.exec("BEGIN EXCLUSIVE");
  const project = tempDir();
  victim.send({ type: "set_workspace_scope", chat_id: ready.chat_id, workspace_scope: { project_path: project } });
  victim.send({ type: "message", chat_id: crypto.randomUUID(), content: "into a chat the store cannot create" });
  const scopeError = (await victim.until((f) => f.event === "error")).at(-1)!;
  expect(scopeError.detail).toBe("internal_error");
  // The refused message: the sender is told to send it again (the chat's subscribers also hear that storage is failing).
  const refused = await victim.until((f) => f.event === "error" && f.reason === "message not stored; send it again");
  expect(refused.every((f) => f.event === "error" && f.detail === "storage_unavailable")).toBe(true);
  db.exec("ROLLBACK");
  db.close();

  // The failed connection still works, and the stream beside it lost nothing.
  await victim.expectQuiet();
  const rest = await streaming.until(isTurnEnd, 20_000);
  const seqs = rest.filter((f) => f.chat_id === chatId && typeof f.seq === "number").map((f) => f.seq as number);
  expect(seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1)).toBe(true);
  expect(rest.some((f) => f.event === "turn_end" && f.status === "done")).toBe(true);
  victim.send({ type: "set_workspace_scope", chat_id: ready.chat_id, workspace_scope: { project_path: project } });
  expect((await victim.until((f) => f.event === "session_updated" || f.event === "error")).at(-1)!.event).toBe("session_updated");
});

/** A log sink that fails on lines with `failOn` (as a closed stderr pipe would) and keeps every other line. */
function failingSink(failOn: string) {
  const kept: string[] = [];
  const log = createLogger("info", "text", (line) => {
    if (line.includes(failOn)) throw new Error("log sink failed");
    kept.push(line);
  });
  return { log, failures: () => kept.filter((l) => l.includes("ERROR")) };
}

test("a failed open is owned by the one socket boundary: logged once, closed with 1011; the gateway stays up", async () => {
  const sink = failingSink("client connected");
  const gw = await startTestGateway({}, sink.log);
  const client = await TestClient.open(gw.wsUrl("unix"));
  expect(await client.closed).toEqual({ code: CLOSE_INTERNAL_ERROR, reason: INTERNAL_ERROR });
  expect(sink.failures()).toHaveLength(1);
  expect(sink.failures()[0]).toContain("socket handler failed callback=open client_id=");
  expect(sink.failures()[0]).toContain('error="log sink failed"');
  expect((await gw.http("unix", "/health")).status).toBe(200);
});

test("an agent's failed frame goes through the same boundary: logged once, answered with an error frame, the connection stays up", async () => {
  const sink = failingSink("agent connected");
  const gw = await startTestGateway(remoteAgentConfig(), sink.log);
  const agent = await RemoteAgent.connect(gw);
  expect(await agent.next("error")).toEqual({ type: "error", detail: INTERNAL_ERROR, reason: FRAME_NOT_HANDLED });
  expect(sink.failures()).toHaveLength(1);
  expect(sink.failures()[0]).toContain("socket handler failed callback=message agent=remote");
  // The hello took effect before the log line failed: the agent serves its chats.
  const { client, chatId } = await chatServedByRemote(gw);
  client.send({ type: "message", chat_id: chatId, content: "still here?" });
  const turn = await agent.next("turn");
  agent.send({ type: "turn_end", turn_id: turn.turn_id, status: "done" });
  expect((await client.until(isTurnEnd)).find((f) => f.event === "turn_end")?.status).toBe("done");
  expect(agent.ws.readyState).toBe(WebSocket.OPEN);
});
