/**
 * Per-chat state stays bounded and honest: unknown chat ids leave nothing behind,
 * idle chat streams are forgotten (and come back from disk unchanged), and a
 * deleted chat's seqs are never handed out again when its id returns.
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { type Frame, isTurnEnd, sendTurn, startTestGateway, TestClient, type TestGateway } from "./helpers.ts";

const rows = (gw: TestGateway, sql: string) => {
  const db = new Database(join(gw.config.data_dir, "agentgate.db"), { readonly: true });
  const out = db.query(sql).all();
  db.close();
  return out;
};

test("attach and stop on chat ids that never existed create nothing, in memory or on disk", async () => {
  const gw = await startTestGateway();
  const { client } = await TestClient.ready(gw.wsUrl("tcp"));
  for (let i = 0; i < 50; i++) {
    client.send({ type: "attach", chat_id: `ghost-${i}`, since_seq: 0 });
    expect(await client.next()).toEqual({ event: "attached", chat_id: `ghost-${i}`, latest_seq: 0 });
  }
  client.send({ type: "stop", chat_id: "ghost-stop" });
  expect(await client.next()).toEqual({ event: "message", chat_id: "ghost-stop", text: "No active task to stop." });
  await client.expectQuiet();
  for (const id of ["ghost-0", "ghost-49", "ghost-stop"]) {
    expect(gw.hub.view(id)).toBeUndefined();
    expect(existsSync(join(gw.config.data_dir, "transcripts", `${id}.jsonl`))).toBe(false);
  }
  expect(rows(gw, "select id from chats where id like 'ghost%'")).toEqual([]);
});

test("idle chat streams beyond chat_streams_max are forgotten and read back from disk unchanged", async () => {
  const gw = await startTestGateway({ chat_streams_max: 4 });
  const turns = new Map<string, Frame[]>();
  for (let i = 0; i < 12; i++) {
    const { client, ready } = await TestClient.ready(gw.wsUrl("unix"));
    turns.set(ready.chat_id, await sendTurn(client, ready.chat_id, `chat ${i}`));
    client.ws.close();
    await client.closed;
  }
  const ids = [...turns.keys()];
  const inMemory = () => ids.filter((id) => gw.hub.view(id) !== undefined).length;
  // Eviction runs soon after chats turn idle; wait for it (bounded).
  for (let i = 0; i < 100 && inMemory() > 4; i++) await Bun.sleep(50);
  expect(inMemory()).toBeLessThanOrEqual(4);
  const first = ids[0]!;
  expect(gw.hub.view(first)).toBeUndefined();
  const { client } = await TestClient.ready(gw.wsUrl("tcp"));
  client.send({ type: "attach", chat_id: first, since_seq: 0 });
  expect(await client.next()).toEqual({ event: "attached", chat_id: first, latest_seq: turns.get(first)!.length });
  expect(await client.until(isTurnEnd)).toEqual(turns.get(first)!);
  const next = await sendTurn(client, first, "again");
  expect(next[0]!.seq).toBe(turns.get(first)!.length + 1);
});

test("a deleted chat's id coming back continues past every seq it ever used", async () => {
  const gw = await startTestGateway({ token: "t" });
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp", { token: "t" }));
  const before = await sendTurn(client, ready.chat_id, "first life");
  const deleted = await gw.http("tcp", `/api/sessions/websocket:${ready.chat_id}/delete`, { method: "DELETE", headers: { authorization: "Bearer t" } });
  expect(deleted.status).toBe(200);
  const after = await sendTurn(client, ready.chat_id, "second life");
  expect(after[0]!.seq).toBeGreaterThan(before.at(-1)!.seq);
  const late = await TestClient.ready(gw.wsUrl("unix", { token: "t" }));
  late.client.send({ type: "attach", chat_id: ready.chat_id, since_seq: before.at(-1)!.seq });
  await late.client.next();
  expect(await late.client.until(isTurnEnd)).toEqual(after);
});
