/**
 * Durable before visible, end to end: a real gateway process streams long echo
 * turns and is killed with SIGKILL at random points, several times, restarted in
 * between (with a torn last line left in the transcript and in the commit log).
 * A final `attach {since_seq: 0}` must hold every event any client received,
 * byte for byte, once each, in seq order.
 */
import { expect, test } from "bun:test";
import { appendFileSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BUN, type Frame, REPO_ROOT, spawnServe, TestClient, tempDir } from "./helpers.ts";

const KILLS = 3;
const MAIN = join(REPO_ROOT, "src/main.ts");

/** Every frame with a seq a client got, by seq; the same seq must always carry the same frame. */
function remember(seen: Map<number, string>, frames: Frame[]): void {
  for (const f of frames) {
    if (typeof f.seq !== "number") continue;
    const text = JSON.stringify(f);
    const before = seen.get(f.seq);
    if (before !== undefined && before !== text) throw new Error(`seq ${f.seq} changed: ${before} → ${text}`);
    seen.set(f.seq, text);
  }
}

/** Leaves a half-written line at the end of the chat's transcript and of the newest commit-log segment. */
function tearTails(dataDir: string, chatId: string): void {
  appendFileSync(join(dataDir, "transcripts", `${chatId}.jsonl`), `{"event":"delta","chat_id":"${chatId}","text":"tor`);
  const logDir = join(dataDir, "commit-log");
  const newest = existsSync(logDir) ? readdirSync(logDir).sort().at(-1) : undefined;
  if (newest) appendFileSync(join(logDir, newest), `${chatId}\t{"event":"delta","chat_id":"${chatId}","te`);
}

test("kill -9 at random points: no event a client received is lost or duplicated, torn tails are ignored", async () => {
  const cwd = tempDir("agentgate-kill-");
  const sock = join(cwd, "gw.sock");
  const args = [BUN, MAIN, "--tcp-enabled=false", `--unix-socket-path=${sock}`, "--websocket-requires-token=false", "--data-dir=data", "--log-level=error"];
  const streaming = [...args, "--echo-chunk-size=3", "--echo-repeat=400", "--echo-delay-ms=1"];
  const seen = new Map<number, string>();
  let chatId = "";

  for (let kill = 0; kill < KILLS; kill++) {
    const gw = await spawnServe(streaming, cwd);
    const { client, ready } = await TestClient.ready(`ws+unix://${sock}:/`);
    chatId ||= ready.chat_id;
    client.send({ type: "attach", chat_id: chatId, since_seq: 0 });
    const attached = await client.next();
    if (attached.latest_seq > 0) remember(seen, await client.until((f) => f.seq === attached.latest_seq));
    client.send({ type: "message", chat_id: chatId, content: "0123456789" });
    const wanted = 1 + Math.floor(Math.random() * 200);
    let deltas = 0;
    remember(seen, await client.until((f) => f.event === "delta" && ++deltas >= wanted, 20_000));
    gw.proc.kill("SIGKILL");
    await gw.proc.exited;
    remember(seen, client.frames.splice(0));
    tearTails(join(cwd, "data"), chatId);
  }

  await spawnServe(args, cwd);
  const { client } = await TestClient.ready(`ws+unix://${sock}:/`);
  client.send({ type: "attach", chat_id: chatId, since_seq: 0 });
  const attached = await client.next();
  expect(attached.latest_seq).toBeGreaterThan(Math.max(...seen.keys()));
  const replayed = await client.until((f) => f.seq === attached.latest_seq, 20_000);
  const seqs = replayed.map((f) => f.seq);
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  expect(new Set(seqs).size).toBe(seqs.length);
  const byseq = new Map(replayed.map((f) => [f.seq as number, JSON.stringify(f)]));
  const lost = [...seen.keys()].filter((seq) => byseq.get(seq) !== seen.get(seq));
  expect(lost).toEqual([]);
  expect(replayed.filter((f) => f.event === "turn_end" && f.status === "interrupted")).toHaveLength(KILLS);
  expect(replayed.some((f) => f.text === "tor" || f.text === undefined && f.event === "delta")).toBe(false);
  await client.expectQuiet();
}, 90_000);
