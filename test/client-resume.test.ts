/**
 * agentgate/client resuming under stress against real gateways: 100 forced
 * disconnects in the middle of one long streamed turn, and gateway processes
 * restarted (SIGTERM, SIGKILL) in the middle of turns. The text the SDK folds
 * must equal what the gateway stored, with no duplicate and no gap, and every
 * connect must have used a token of its own.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { bootstrapToken, type Chat, type ChatEvent, type Client, connect, type HttpTarget } from "agentgate/client";
import { BUN, onCleanup, REPO_ROOT, spawnServe, startTestGateway, storedEvents, tempDir, textOfTurn } from "./helpers.ts";

const FAST = { initialMs: 5, maxMs: 100 };

/** A client whose every (re)connect fetches a fresh single-use token; records what it saw. */
function trackedClient(options: { url?: string; socketPath?: string }, target: HttpTarget) {
  const tokens: string[] = [];
  const fetchToken = bootstrapToken(target);
  let opens = 0;
  const client = connect({ ...options, backoff: FAST, getToken: async () => (tokens.push(await fetchToken()), tokens.at(-1)!) });
  client.on("open", () => opens++);
  onCleanup(() => client.close());
  return { client, tokens, opens: () => opens };
}

/** Every seq-carrying event the chat delivered, and its gaps. */
function record(chat: Chat) {
  const seqs: number[] = [];
  const gaps: unknown[] = [];
  chat.on("*", (e) => {
    if (e.event === "gap") gaps.push(e);
    else if ("seq" in e && e.seq !== undefined) seqs.push(e.seq);
  });
  return { seqs, gaps };
}

/** No duplicate and no reordering: seqs only grow (they may skip after a crash, by design). */
const increasing = (seqs: number[]) => seqs.every((s, i) => i === 0 || s > seqs[i - 1]!);

test("100 forced disconnects mid-stream: the folded text is the stored text, no duplicate, a fresh token per connect", async () => {
  // 101 bootstraps in a few seconds: far above the default per-address rate limit, which is not under test here.
  const gw = await startTestGateway({ websocket_requires_token: true, echo_chunk_size: 1, echo_repeat: 100_000, echo_delay_ms: 1, rate_limit_auth_per_min: 0 });
  const tcp = gw.listeners.find((l) => l.transport === "tcp")!.server.port;
  const { client, tokens, opens } = trackedClient({ url: gw.wsUrl("tcp") }, { baseUrl: `http://127.0.0.1:${tcp}` });
  const chat = await client.newChat();
  const { seqs, gaps } = record(chat);
  let disconnects = 0;
  let deltasSinceOpen = 0;
  client.on("open", () => (deltasSinceOpen = 0));
  chat.on("delta", () => {
    if (++deltasSinceOpen !== 3) return;
    if (disconnects === 100) return void chat.stop();
    disconnects++;
    client.socket!.close();
  });
  const turn = chat.nextTurn();
  await chat.send("0123456789");
  const summary = await turn;
  expect(disconnects).toBe(100);
  expect(summary.status).toBe("cancelled");
  const stored = await storedEvents(`${gw.wsUrl("tcp")}?token=${await bootstrapToken({ baseUrl: `http://127.0.0.1:${tcp}` })()}`, chat.id);
  expect(summary.text).toBe(textOfTurn(stored, summary.turn_id));
  expect(summary.text.length).toBeGreaterThan(300);
  expect(gaps).toEqual([]);
  expect(increasing(seqs)).toBe(true);
  expect(opens()).toBe(101);
  expect(tokens.length).toBe(101);
  expect(new Set(tokens).size).toBe(101);
}, 60_000);

/** A gateway process from source on a unix socket in `dir`, paced so a turn lasts. */
const serve = (dir: string) =>
  spawnServe(
    [BUN, join(REPO_ROOT, "src/main.ts"), "--tcp-enabled=false", `--unix-socket-path=${join(dir, "gw.sock")}`, "--data-dir=data"]
      .concat(["--echo-chunk-size=1", "--echo-repeat=1000", "--echo-delay-ms=2", "--shutdown-grace-ms=50", "--log-level=error"]),
    dir,
  );

async function restartDuring(chat: Chat, dir: string, proc: Subprocess, signal: "SIGTERM" | "SIGKILL") {
  let deltas = 0;
  const midStream = new Promise<void>((resolve) => {
    const off = chat.on("delta", () => {
      if (++deltas < 50) return;
      off();
      resolve();
    });
  });
  const turn = chat.nextTurn();
  await chat.send("0123456789");
  await midStream;
  proc.kill(signal);
  await proc.exited;
  const next = await serve(dir);
  return { turn: await turn, next };
}

test("3 gateway restarts during long turns (SIGTERM, SIGKILL, SIGTERM): each turn's folded text is the stored text", async () => {
  const dir = tempDir("agentgate-sdk-restart-");
  const socketPath = join(dir, "gw.sock");
  let gateway = await serve(dir);
  const { client, tokens, opens } = trackedClient({ socketPath }, { socketPath });
  const chat = await client.newChat();
  const { seqs, gaps } = record(chat);
  const turns = [];
  // A clean shutdown cancels the running turn; after a kill the next start closes it as interrupted.
  const ending = { SIGTERM: "cancelled", SIGKILL: "interrupted" };
  for (const signal of ["SIGTERM", "SIGKILL", "SIGTERM"] as const) {
    const { turn, next } = await restartDuring(chat, dir, gateway.proc, signal);
    turns.push({ ...turn, expected: ending[signal] });
    gateway = next;
  }
  // After a clean shutdown the cancelled turn_end arrives before the close: the last reconnect may still be under way.
  for (let i = 0; i < 10 && opens() < 4; i++) await client.once("open");
  const stored = await storedEvents(`ws+unix://${socketPath}:/?token=${await bootstrapToken({ socketPath })()}`, chat.id);
  for (const turn of turns) {
    expect(turn.status).toBe(turn.expected);
    expect(turn.text.length).toBeGreaterThanOrEqual(50);
    expect(turn.text).toBe(textOfTurn(stored, turn.turn_id));
  }
  expect(gaps).toEqual([]);
  expect(increasing(seqs)).toBe(true);
  expect(seqs.at(-1)).toBe(stored.at(-1)!.seq);
  expect(opens()).toBe(4);
  expect(new Set(tokens).size).toBe(tokens.length);
  expect(tokens.length).toBeGreaterThanOrEqual(4);
}, 60_000);
