/**
 * Crash survival through the compiled binary: SIGKILL in the middle of a long
 * streamed turn, restart on the same (now existing) database, resume from seq 0.
 */
import { expect, test } from "bun:test";
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, ensureBinary, isTurnEnd, spawnServe, TestClient, tempDir } from "./helpers.ts";

test("after SIGKILL mid-turn, every event a client saw is replayed once, in order, and the turn is closed", async () => {
  ensureBinary();
  const cwd = tempDir("agentgate-crash-");
  const sock = join(cwd, "gw.sock");
  const args = [BINARY, "--tcp-enabled=false", `--unix-socket-path=${sock}`, "--websocket-requires-token=false", "--data-dir=data"];
  const first = await spawnServe([...args, "--echo-chunk-size=1", "--echo-repeat=200", "--echo-delay-ms=1"], cwd);
  const { client, ready } = await TestClient.ready(`ws+unix://${sock}:/`);
  const chatId = ready.chat_id;
  client.send({ type: "message", chat_id: chatId, content: "0123456789" });
  const seenLive = await client.until((f) => f.seq >= 300);
  first.proc.kill("SIGKILL");
  await first.proc.exited;

  const file = join(cwd, "data", "transcripts", `${chatId}.jsonl`);
  appendFileSync(file, `{"event":"delta","chat_id":"${chatId}","text":"tor`);

  await spawnServe(args, cwd);
  const again = await TestClient.ready(`ws+unix://${sock}:/`);
  again.client.send({ type: "attach", chat_id: chatId, since_seq: 0 });
  const attached = await again.client.next();
  const replayed = await again.client.until(isTurnEnd);
  // Durable before visible: everything the client saw is there, byte for byte, perhaps followed by events it had not read yet.
  expect(replayed.slice(0, seenLive.length)).toEqual(seenLive);
  const written = replayed.slice(0, -2);
  expect(written.map((f) => f.seq)).toEqual(written.map((_, i) => i + 1));
  const [turnEnd, idle] = replayed.slice(-2);
  expect(turnEnd).toMatchObject({ event: "turn_end", status: "interrupted", turn_id: written[1]!.turn_id });
  expect(idle).toMatchObject({ event: "goal_status", status: "idle" });
  expect(turnEnd!.seq).toBeGreaterThan(written.at(-1)!.seq);
  expect(attached.latest_seq).toBe(idle!.seq);
  await again.client.expectQuiet();
}, 60_000);
