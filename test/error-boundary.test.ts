/**
 * A storage error while a client frame is handled must not end the process: the
 * sender gets an error event, its connection stays up, and other chats keep
 * streaming. The store is failed for real: the test takes SQLite's write lock on
 * the gateway's own database file, so the gateway's writes fail with SQLITE_BUSY.
 */
import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { isTurnEnd, startTestGateway, TestClient, tempDir } from "./helpers.ts";

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
