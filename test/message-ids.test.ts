/**
 * Resend protection that survives restarts (issue #12 item 3): accepted
 * client_msg_ids live in SQLite with the chat, bounded by count and age.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { ChatStore } from "../src/store/chat-store.ts";
import { openDatabase } from "../src/store/db.ts";
import { AcceptedMessageIds } from "../src/store/message-ids.ts";
import { ackAndTurnEnd, BINARY, ensureBinary, isTurnEnd, spawnServe, TestClient, tempDir } from "./helpers.ts";

test("after kill -9 and a restart, a resent client_msg_id is acknowledged as a duplicate and not run again", async () => {
  ensureBinary();
  const cwd = tempDir("agentgate-resend-");
  const sock = join(cwd, "gw.sock");
  const args = [BINARY, "--tcp-enabled=false", `--unix-socket-path=${sock}`, "--websocket-requires-token=false", "--data-dir=data"];
  const first = await spawnServe(args, cwd);
  const { client, ready } = await TestClient.ready(`ws+unix://${sock}:/`);
  const chat_id = ready.chat_id;
  const message = { type: "message", chat_id, content: "exactly once", client_msg_id: "resend-1" };
  client.send(message);
  expect((await ackAndTurnEnd(client)).find((f) => f.event === "message_ack")).toEqual({ event: "message_ack", chat_id, client_msg_id: "resend-1", duplicate: false });
  first.proc.kill("SIGKILL");
  await first.proc.exited;

  await spawnServe(args, cwd);
  const again = await TestClient.ready(`ws+unix://${sock}:/`);
  again.client.send(message);
  expect(await again.client.next()).toEqual({ event: "message_ack", chat_id, client_msg_id: "resend-1", duplicate: true });
  await again.client.expectQuiet();
}, 60_000);

test("accepted ids are bounded by count (oldest first) and by age, and go with their chat", () => {
  const dir = tempDir();
  const db = openDatabase(join(dir, "agentgate.db"), 1000);
  const chats = new ChatStore(db, "echo", (e) => { throw e; });
  for (const chat of ["a", "b"]) chats.ensure(chat);
  let now = 1_000_000;
  const ids = new AcceptedMessageIds(db, { maxIds: 3, maxAgeMs: 60_000 }, () => now);
  for (const [chat, id] of [["a", "1"], ["b", "1"], ["a", "2"], ["a", "3"]] as const) ids.accept(chat, id);
  expect([ids.has("a", "1"), ids.has("b", "1"), ids.has("a", "2"), ids.has("a", "3"), ids.has("b", "3")]).toEqual([false, true, true, true, false]);
  now += 60_001;
  expect(ids.has("a", "3")).toBe(false);
  ids.accept("b", "fresh");
  expect(db.$client.query("select count(*) as n from client_msg_ids").get()).toEqual({ n: 1 });
  chats.delete("b");
  expect(db.$client.query("select count(*) as n from client_msg_ids").get()).toEqual({ n: 0 });
  db.$client.close();
});
