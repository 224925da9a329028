/**
 * Bounded fuzz of the client protocol against a gateway child process:
 * ≥ 100 000 malformed frames (random bytes, binary, invalid UTF-8, every field
 * of every envelope with wrong types, __proto__ / constructor keys and ids,
 * deep nesting, frames just under and just over max_message_bytes) over many
 * connections, sent in large batches, while a well-behaved client runs turns
 * beside them. The process must stay up, the good client's stream must have
 * no gap (consecutive seq, every delta), and RSS must come back near its start.
 */
import { expect, test } from "bun:test";
import { openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseInbound } from "../src/protocol/client.ts";
import { BUN, type Frame, isTurnEnd, onCleanup, REPO_ROOT, TestClient, tempDir } from "./helpers.ts";

const MAX_FRAME = 8192;
const CONNECTIONS = Number(process.env.FUZZ_CONNECTIONS ?? 40);
const FRAMES_PER_CONNECTION = Number(process.env.FUZZ_FRAMES ?? 2600);

/** Deterministic PRNG (mulberry32), so a failure replays. */
function prng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WRONG: unknown[] = [null, 0, -1, 1.5, 1e308, true, [], {}, "", "x".repeat(300), ["a", 1], { __proto__: { x: 1 } }, [[[[1]]]], "constructor", "__proto__", "toString", "!bad id"];

/** A valid frame of every envelope type; each fuzz frame breaks one field of one of them. */
const VALID: Frame[] = [
  { type: "new_chat", agent: "echo", capabilities: ["camera"], workspace_scope: { project_path: "/nonexistent" } },
  { type: "attach", chat_id: "fz", since_seq: 0, capabilities: [] },
  { type: "message", chat_id: "fz", content: "x", media: [], media_ids: ["m"], client_msg_id: "c" },
  { type: "set_workspace_scope", chat_id: "fz", workspace_scope: { project_path: "/nonexistent", access_mode: "full" } },
  { type: "stop", chat_id: "fz" },
  { type: "tool_result", chat_id: "fz", call_id: "call", ok: true, error: "e" },
  { type: "ping" },
];

const broken = (base: Frame, field: string, wrong: unknown) => JSON.stringify({ ...base, [field]: wrong });

/** A frame the gateway must refuse: by its schema, or (a free-form workspace_scope) by scope validation. */
function refused(frame: string): boolean {
  const inbound = parseInbound(frame);
  return inbound.kind === "invalid" || (inbound.kind === "envelope" && inbound.envelope.type === "set_workspace_scope");
}

/** Every envelope with one field replaced by every wrong value, kept when the gateway must refuse it. */
const BROKEN_FIELDS: string[] = VALID.flatMap((base) => Object.keys(base).flatMap((field) => WRONG.map((wrong) => broken(base, field, wrong)))).filter(refused);

const deep = (depth: number) => `{"type":"message","chat_id":"!bad","content":"x","webui":${"[".repeat(depth)}${"]".repeat(depth)}}`;

/**
 * Frame `i` of the fuzz corpus. Frames a valid client could send (they start
 * turns, create chats) are the well-behaved client's business; these are all
 * refused or ignored, so the fuzz exercises the refusal paths at full rate.
 */
function fuzzFrame(i: number, rand: () => number): string | Uint8Array {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  switch (i % 10) {
    case 0:
      return crypto.getRandomValues(new Uint8Array(1 + Math.floor(rand() * 200)));
    case 1:
      return new Uint8Array([0xc3, 0x28, 0xff, 0xfe, ...crypto.getRandomValues(new Uint8Array(Math.floor(rand() * 50)))]);
    case 2:
      return `{"type":"message","__proto__":{"chat_id":"fz","content":"x"},"constructor":{"prototype":{"polluted":1}},"chat_id":${pick(['"!x"', "null", "{}"])}}`;
    case 3:
      return pick([deep(64), deep(4000), `{"content":${"{\"a\":".repeat(1300)}1${"}".repeat(1300)}}`, `{"text":null,"message":{"__proto__":[]}}`]);
    case 4:
      // Just under the limit: one in a hundred frames (they cost bandwidth, not new code paths).
      if (i % 100 === 4) return `{"type":"message","chat_id":"!bad","content":"${"y".repeat(MAX_FRAME - 100 - Math.floor(rand() * 50))}"}`;
      return BROKEN_FIELDS[(i * 7) % BROKEN_FIELDS.length]!;
    case 5:
      return `{"type":${pick(['"nope"', '"__proto__"', '"constructor"', '"hasOwnProperty"', "1", "null", '["message"]', '"MESSAGE"'])},"chat_id":"fz"}`;
    default:
      return BROKEN_FIELDS[i % BROKEN_FIELDS.length]!;
  }
}

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

async function startGatewayProcess() {
  const dir = tempDir("agentgate-fuzz-");
  const sock = join(dir, "gw.sock");
  const stderr = join(dir, "stderr.log");
  const args = ["--tcp-enabled=false", `--unix-socket-path=${sock}`, "--websocket-requires-token=false", `--data-dir=${join(dir, "data")}`, `--max-message-bytes=${MAX_FRAME}`, "--max-queued-turns=1", "--log-level=error"];
  const proc = Bun.spawn([BUN, join(REPO_ROOT, "src/main.ts"), ...args], { cwd: dir, env: { PATH: process.env.PATH ?? "", HOME: dir }, stdout: "pipe", stderr: openSync(stderr, "w") });
  onCleanup(() => {
    if (proc.exitCode === null) proc.kill("SIGKILL");
  });
  const reader = proc.stdout.getReader();
  let banner = "";
  while (!banner.includes("connect:\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`gateway exited early: ${readFileSync(stderr, "utf8")}`);
    banner += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { proc, url: `ws+unix://${sock}:/`, stderr };
}

/** Opens a socket, sends its whole batch at once, and waits until the gateway has answered the closing ping. */
async function fuzzConnection(url: string, seed: number, count: number): Promise<number> {
  const rand = prng(seed);
  const { client } = await TestClient.ready(url);
  for (let i = 0; i < count; i++) client.ws.send(fuzzFrame(i, rand));
  client.send({ type: "ping" });
  await client.until((f) => f.event === "pong", 60_000);
  client.ws.close();
  return count;
}

/** Frames just over the limit close their socket with 1009; the gateway lives on. */
async function oversized(url: string, n: number): Promise<number> {
  let closed = 0;
  for (let i = 0; i < n; i++) {
    const { client } = await TestClient.ready(url);
    client.send(`{"type":"message","chat_id":"fz","content":"${"z".repeat(MAX_FRAME)}"}`);
    if ((await client.closed).code === 1009) closed++;
  }
  return closed;
}

/** The well-behaved client: turns back to back until `done`, checking every delta and every seq. */
async function wellBehaved(url: string, done: () => boolean): Promise<{ turns: number; events: number }> {
  const { client } = await TestClient.ready(url);
  client.send({ type: "new_chat" });
  const chatId = (await client.until((f) => f.event === "attached")).at(-1)!.chat_id as string;
  let lastSeq = 0;
  let turns = 0;
  let events = 0;
  for (; turns < 400 && (turns < 3 || !done()); turns++) {
    const content = `good-${turns}-${"abcdefghij".repeat(6)}`;
    client.send({ type: "message", chat_id: chatId, content });
    const frames = (await client.until(isTurnEnd, 30_000)).filter((f: Frame) => f.chat_id === chatId && f.seq !== undefined);
    for (const f of frames) expect([f.event, f.seq]).toEqual([f.event, ++lastSeq]);
    expect(frames.filter((f) => f.event === "delta").map((f) => f.text).join("")).toBe(content);
    events += frames.length;
  }
  return { turns, events };
}

test("≥ 100 000 malformed frames beside a well-behaved client: no crash, no gap, RSS back near start", async () => {
  const { proc, url, stderr } = await startGatewayProcess();
  await fuzzConnection(url, 1, 2000);
  const rssStart = rssBytes(proc.pid);
  let fuzzing = true;
  const good = wellBehaved(url, () => !fuzzing);
  const started = performance.now();
  const sent = await Promise.all(Array.from({ length: CONNECTIONS }, (_, c) => fuzzConnection(url, 100 + c, FRAMES_PER_CONNECTION)));
  const closed1009 = await oversized(url, 20);
  fuzzing = false;
  const { turns, events } = await good;
  const seconds = (performance.now() - started) / 1000;
  const rssPeak = rssBytes(proc.pid);
  await Bun.sleep(500);
  const rssEnd = rssBytes(proc.pid);
  const total = sent.reduce((a, b) => a + b, 0) + 2000 + closed1009;
  const MiB = (n: number) => (n / 1024 / 1024).toFixed(1);
  process.stdout.write(
    `fuzz: ${total} malformed frames on ${CONNECTIONS + 21} connections in ${seconds.toFixed(1)} s; good client ${turns} turns, ${events} events, no gap; RSS ${MiB(rssStart)} → ${MiB(rssPeak)} → ${MiB(rssEnd)} MiB\n`,
  );
  expect(total).toBeGreaterThanOrEqual(100_000);
  expect(closed1009).toBe(20);
  expect([proc.exitCode, readFileSync(stderr, "utf8")]).toEqual([null, ""]);
  const after = await TestClient.ready(url);
  after.client.send({ type: "ping" });
  expect((await after.client.next()).event).toBe("pong");
  expect(rssEnd).toBeLessThan(rssStart + 64 * 1024 * 1024);
}, 120_000);

test("the corpus breaks every field of every envelope type (new_chat's free-form workspace_scope aside: any value is valid there)", () => {
  const fields = VALID.flatMap((base) => Object.keys(base).map((field) => [base, field] as const)).filter(([b, f]) => !(b.type === "new_chat" && f === "workspace_scope"));
  for (const [base, field] of fields) expect([base.type, field, WRONG.some((w) => BROKEN_FIELDS.includes(broken(base, field, w)))]).toEqual([base.type, field, true]);
});
