/**
 * The writer of a chat killed (kill -9) or paused (SIGSTOP) mid-turn: another
 * gateway process takes the chat over once the lease lapses, closes the
 * interrupted turn, and numbers past everything published; a client of the dead
 * node resumes on the survivor with nothing lost and nothing twice; a paused
 * writer that resumes is fenced.
 */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import { join } from "node:path";
import { BUN, type Frame, isTurnEnd, REPO_ROOT, spawnServe, TestClient, tempDir } from "../helpers.ts";
import { attachedClient } from "./clients.ts";
import { startRedis } from "./redis-server.ts";

const MAIN = join(REPO_ROOT, "src/main.ts");
const CHAT = "takeover-chat";
const LEASE_MS = 1000;
const LONG_TURN_ID = "long-turn-1";

async function gatewayProcess(redisUrl: string) {
  const cwd = tempDir("agentgate-node-");
  const sock = join(cwd, "gw.sock");
  const { proc } = await spawnServe(
    [BUN, MAIN, "serve", "--tcp-enabled=false", `--unix-socket-path=${sock}`, "--data-dir=data", "--websocket-requires-token=false", "--log-level=error",
      `--cluster-redis-url=${redisUrl}`, `--cluster-lease-ms=${LEASE_MS}`, "--echo-chunk-size=2", "--echo-repeat=150", "--echo-delay-ms=4"],
    cwd,
  );
  return { proc, url: `ws+unix://${sock}:/` };
}

const chatEvents = (frames: Frame[]) => frames.filter((f) => f.chat_id === CHAT && typeof f.seq === "number");

const attached = (url: string, sinceSeq?: number) => attachedClient(url, CHAT, sinceSeq);

/** Chat events until one matches, bounded in time. */
async function eventsUntil(client: TestClient, match: (f: Frame) => boolean, timeoutMs = 15_000): Promise<Frame[]> {
  const events: Frame[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [frame] = chatEvents([await client.next(Math.max(1, deadline - Date.now()))]);
    if (!frame) continue;
    events.push(frame);
    if (match(frame)) return events;
  }
}

const contiguous = (events: Frame[]) => events.every((f, i) => i === 0 || f.seq === events[i - 1]!.seq + 1);

/**
 * Two gateway processes on one redis-server: a client on a starts a long turn (a
 * writes the chat), a watcher on b mirrors it; returns once the watcher has seen
 * 20 of the turn's deltas.
 */
async function writerMidTurn() {
  const redis = await startRedis();
  const [a, b] = await Promise.all([gatewayProcess(redis.url), gatewayProcess(redis.url)]);
  const watcher = await attached(b.url);
  const writerClient = await attached(a.url);
  writerClient.send({ type: "message", chat_id: CHAT, content: "a long turn", client_msg_id: LONG_TURN_ID });
  let deltas = 0;
  const before = await eventsUntil(watcher, (f) => f.event === "delta" && ++deltas === 20);
  const turnId = before.find((f) => f.event === "goal_status" && f.status === "running")?.turn_id;
  expect(turnId).toBeString();
  return { redis, a, b, watcher, writerClient, before, turnId };
}

test("kill -9 of the writer mid-turn: the other node takes over, closes the turn, continues numbering; a resume loses and repeats nothing; a resend of the message is a duplicate there", async () => {
  const { a, b, watcher, writerClient, before, turnId } = await writerMidTurn();
  a.proc.kill("SIGKILL");
  await a.proc.exited;
  const seenByWriterClient = chatEvents(writerClient.frames.splice(0));

  // b takes over once the lease lapses and closes the interrupted turn.
  const after = await eventsUntil(watcher, (f) => isTurnEnd(f));
  const watched = [...before, ...after];
  expect(contiguous(watched)).toBe(true);
  expect(watched.at(-2)).toMatchObject({ event: "turn_end", status: "interrupted", turn_id: turnId });
  expect(watched.at(-1)).toMatchObject({ event: "goal_status", status: "idle", turn_id: turnId });

  // The dead node's client resumes on b from the last event it saw: nothing lost, nothing twice.
  const lastSeen = seenByWriterClient.at(-1)!.seq;
  const resumed = await attached(b.url, lastSeen);
  const rest = await eventsUntil(resumed, (f) => f.seq === watched.at(-1)!.seq);
  expect([...seenByWriterClient, ...rest]).toEqual(watched.filter((f) => f.seq >= seenByWriterClient[0]!.seq));
  await resumed.expectQuiet();

  // The dead writer's client sends its message again to b, now the writer: acknowledged as a duplicate, not run again.
  watcher.send({ type: "message", chat_id: CHAT, content: "a long turn", client_msg_id: LONG_TURN_ID });
  expect((await watcher.until((f) => f.event === "message_ack")).at(-1)).toEqual({ event: "message_ack", chat_id: CHAT, client_msg_id: LONG_TURN_ID, duplicate: true });

  // b writes the chat now: a new turn numbers on past everything published (the duplicate published nothing).
  watcher.send({ type: "message", chat_id: CHAT, content: "on b" });
  const next = await eventsUntil(watcher, (f) => isTurnEnd(f));
  expect(next[0]!.seq).toBe(watched.at(-1)!.seq + 1);
  expect(contiguous(next)).toBe(true);
}, 30_000);

test("a writer paused (SIGSTOP) past its lease is replaced, and once resumed its writes are refused: never two writers", async () => {
  const { redis, a, watcher, writerClient, turnId } = await writerMidTurn();
  a.proc.kill("SIGSTOP");
  const after = await eventsUntil(watcher, (f) => isTurnEnd(f));
  expect(after.at(-2)).toMatchObject({ event: "turn_end", status: "interrupted", turn_id: turnId });

  // Resumed, the old writer still runs its turn, but every append is fenced: its clients are told, nobody sees its events.
  a.proc.kill("SIGCONT");
  await writerClient.until((f) => f.event === "error" && f.reason === "chat_owned_elsewhere", 15_000);
  await watcher.expectQuiet();

  // Redis holds one contiguous stream; nothing of the paused writer's turn follows its interruption.
  const client = new RedisClient(redis.url);
  const entries = (await client.send("XRANGE", [`agentgate:{${CHAT}}:events`, "-", "+"])) as [string, string[]][];
  client.close();
  const stored = entries.map(([, fields]) => JSON.parse(fields[1]!) as Frame);
  expect(contiguous(stored)).toBe(true);
  const interruption = stored.findIndex((f) => f.event === "turn_end" && f.status === "interrupted");
  expect(stored.slice(interruption + 1)).toEqual([expect.objectContaining({ event: "goal_status", status: "idle", turn_id: turnId })]);

  // The new writer goes on numbering.
  watcher.send({ type: "message", chat_id: CHAT, content: "b now" });
  const next = await eventsUntil(watcher, (f) => isTurnEnd(f));
  expect(next[0]!.seq).toBe(stored.at(-1)!.seq + 1);
}, 40_000);

test("three nodes: kill -9 of the writer mid-turn; the two others see one identical stream (the turn closed once), whichever takes over, and a client of the dead node resumes on either with nothing lost or twice", async () => {
  const { redis, a, b, watcher: onB, writerClient, before } = await writerMidTurn();
  const c = await gatewayProcess(redis.url);
  // c joins mid-turn, resuming from where b's watcher started: it mirrors the same stream.
  const onC = await attached(c.url, before[0]!.seq - 1);
  const seenOnC = await eventsUntil(onC, (f) => f.seq === before.at(-1)!.seq);
  expect(seenOnC).toEqual(before);
  a.proc.kill("SIGKILL");
  await a.proc.exited;
  const seenByWriterClient = chatEvents(writerClient.frames.splice(0));

  const afterOnB = await eventsUntil(onB, (f) => f.event === "goal_status" && f.status === "idle");
  const afterOnC = await eventsUntil(onC, (f) => f.event === "goal_status" && f.status === "idle");
  expect(afterOnC).toEqual(afterOnB);
  const watched = [...before, ...afterOnB];
  expect(contiguous(watched)).toBe(true);
  expect(watched.filter((f) => f.event === "turn_end")).toEqual([expect.objectContaining({ status: "interrupted" })]);
  await onB.expectQuiet();
  await onC.expectQuiet();

  // The dead node's client resumes on each survivor from the last event it saw.
  const lastSeen = seenByWriterClient.at(-1)!.seq;
  for (const survivor of [b, c]) {
    const resumed = await attached(survivor.url, lastSeen);
    const rest = await eventsUntil(resumed, (f) => f.seq === watched.at(-1)!.seq);
    expect([...seenByWriterClient, ...rest]).toEqual(watched.filter((f) => f.seq >= seenByWriterClient[0]!.seq));
    await resumed.expectQuiet();
  }

  // A new turn sent on c runs on whichever node took over; both see it, numbered on.
  onC.send({ type: "message", chat_id: CHAT, content: "after the takeover" });
  const nextOnC = await eventsUntil(onC, (f) => isTurnEnd(f));
  expect(nextOnC[0]!.seq).toBe(watched.at(-1)!.seq + 1);
  expect(contiguous(nextOnC)).toBe(true);
  expect(await eventsUntil(onB, (f) => isTurnEnd(f))).toEqual(nextOnC);
}, 40_000);

test("kill -9 of the writer with messages queued behind its turn: the node taking over closes the turn and runs the queued messages, in order", async () => {
  const { a, watcher, writerClient, turnId } = await writerMidTurn();
  writerClient.send({ type: "message", chat_id: CHAT, content: "q1", client_msg_id: "queued-1" });
  writerClient.send({ type: "message", chat_id: CHAT, content: "q2", client_msg_id: "queued-2" });
  // Both queued messages are in Redis (the watcher mirrored them) before the writer dies.
  let users = 0;
  const beforeKill = await eventsUntil(watcher, (f) => f.event === "user" && ++users === 2);
  expect(beforeKill.filter((f) => f.event === "user").map((f) => f.text)).toEqual(["q1", "q2"]);
  a.proc.kill("SIGKILL");
  await a.proc.exited;

  let ends = 0;
  const after = await eventsUntil(watcher, (f) => isTurnEnd(f) && ++ends === 3, 30_000);
  expect(contiguous([...beforeKill, ...after])).toBe(true);
  const turnEnds = after.filter((f) => f.event === "turn_end");
  expect(turnEnds[0]).toMatchObject({ status: "interrupted", turn_id: turnId });
  expect(turnEnds.slice(1).map((f) => f.status)).toEqual(["done", "done"]);
  // Each queued message ran as its own turn, in order: its deltas echo it.
  const textOf = (turn: string) => after.filter((f) => f.event === "delta" && f.turn_id === turn).map((f) => f.text).join("");
  expect(textOf(turnEnds[1]!.turn_id)).toBe("q1".repeat(150));
  expect(textOf(turnEnds[2]!.turn_id)).toBe("q2".repeat(150));
  // Nothing more runs.
  expect(after.at(-1)).toMatchObject({ event: "goal_status", status: "idle", turn_id: turnEnds[2]!.turn_id });
  await watcher.expectQuiet();
}, 60_000);
