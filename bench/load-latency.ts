/**
 * The latency load generator: one process plays the publisher AND the
 * subscribers, so every latency is a difference of two readings of this
 * process's own monotonic clock (performance.now()), never a comparison of two
 * processes' clocks.
 *
 * The publisher sends deltas at a fixed rate (a 1 ms timer sends every delta that
 * is due, so 2 000/s is 2 per tick), each carrying its send time in its text.
 *   agentgate: the publisher is a WebSocket agent connected in with the agent
 *              token; a subscriber's message starts the turn in chat "lat";
 *   raw:       the publisher sends delta-shaped JSON frames to bench/raw-server.ts,
 *              which relays each with one native publish.
 * Each subscriber records (arrival − send time) per delta and checks seq for gaps.
 * Both sides pay the same load-process costs (timer, send, receive, JSON.parse),
 * so agentgate p50 − raw p50 is what the gateway adds per delta.
 *
 * Optionally, every `stallEveryMs` a new "stalled" client connects over a raw TCP
 * socket, joins the chat and never reads again (the slow-consumer scenario).
 *
 * Cluster (bench/cluster.ts): with `subscriberUrls`, the subscribers are on
 * those gateways (spread round-robin) and the turn is started by a client on
 * `url` (the node the agent is connected to, which then writes the chat), so
 * every delta crosses Redis.
 *
 * argv: one JSON object {url, side, rate, seconds, subscribers, stallEveryMs, padBytes, agentToken, subscriberUrls?}.
 * Prints {ready} once set up, then one JSON report line. Exits by itself.
 */
import { connect, type Socket } from "node:net";

interface Options {
  url: string;
  side: "raw" | "agentgate";
  rate: number;
  seconds: number;
  subscribers: number;
  stallEveryMs: number;
  padBytes: number;
  agentToken: string;
  subscriberUrls?: string[];
}

const o = JSON.parse(process.argv[2]!) as Options;
const MAX_LIFETIME_MS = o.seconds * 1000 + 120_000;
setTimeout(() => fail("load-latency lifetime exceeded"), MAX_LIFETIME_MS).unref();
const CHAT = "lat";
const TURN = "00000000-0000-4000-8000-000000000000";
const total = Math.round(o.rate * o.seconds);
const pad = "p".repeat(o.padBytes);

function report(obj: object) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}
function fail(error: string): never {
  report({ error });
  process.exit(2);
}

/** Sends every delta due by now, then again in 1 ms, until `total` are sent; `send(stamp, n)` sends delta n. */
function pace(send: (text: string, n: number) => void, done: () => void) {
  const start = performance.now();
  let sent = 0;
  const tick = () => {
    const due = Math.min(total, Math.floor(((performance.now() - start) * o.rate) / 1000));
    while (sent < due) send(`${performance.now().toFixed(3)} ${pad}`, ++sent);
    if (sent < total) setTimeout(tick, 1);
    else done();
  };
  tick();
}

// ── subscribers ────────────────────────────────────────────────────────────
const latencies: number[] = [];
let gaps = 0;
let finished = 0;
let whenAllDone: () => void = () => {};
const allDone = new Promise<void>((r) => (whenAllDone = r));

function subscriber(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  let lastSeq = 0;
  let deltas = 0;
  return new Promise((resolve, reject) => {
    ws.addEventListener("error", () => reject(new Error("subscriber failed")));
    if (o.side === "raw") ws.addEventListener("open", () => resolve(ws));
    // Deltas are read without JSON.parse (the stamp leads the text, seq ends the frame), so the
    // subscribers' own cost stays small next to what is measured.
    ws.addEventListener("message", (e) => {
      const data = String(e.data);
      if (!data.startsWith('{"event":"delta"')) {
        if (data.includes('"event":"ready"')) ws.send(JSON.stringify({ type: "attach", chat_id: CHAT }));
        if (data.includes('"event":"attached"')) resolve(ws);
        return;
      }
      const arrived = performance.now();
      latencies.push(arrived - Number.parseFloat(data.slice(data.indexOf('"text":"') + 8)));
      const seq = Number(data.slice(data.lastIndexOf('"seq":') + 6, -1));
      if (lastSeq !== 0 && seq !== lastSeq + 1) gaps++;
      lastSeq = seq;
      if (++deltas === total && ++finished === o.subscribers) whenAllDone();
    });
  });
}

// ── stalled clients: a WebSocket handshake over TCP, one attach frame, then no more reading ──
const stalled: Socket[] = [];

/** A masked client text frame (RFC 6455 §5.3), as a browser would send it. */
function maskedFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const header = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([header, mask, payload.map((b, i) => b ^ mask[i % 4]!)]);
}

function stall() {
  const { hostname, port } = new URL(o.url);
  const socket = connect(Number(port), hostname);
  socket.write(`GET / HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  socket.once("data", () => {
    if (o.side === "agentgate") socket.write(maskedFrame(JSON.stringify({ type: "attach", chat_id: CHAT })));
    socket.pause();
  });
  socket.on("error", () => {});
  stalled.push(socket);
}

// ── publishers ─────────────────────────────────────────────────────────────
function agentPublisher(): Promise<void> {
  const ws = new WebSocket(`${o.url}agent?token=${o.agentToken}`);
  ws.addEventListener("message", (e) => {
    const frame = JSON.parse(String(e.data)) as { type: string; turn_id: string };
    if (frame.type !== "turn") return;
    const turnId = frame.turn_id;
    pace(
      (text) => ws.send(JSON.stringify({ type: "delta", turn_id: turnId, text })),
      () => {
        ws.send(JSON.stringify({ type: "stream_end", turn_id: turnId }));
        ws.send(JSON.stringify({ type: "turn_end", turn_id: turnId, status: "done" }));
      },
    );
  });
  return new Promise((resolve) => ws.addEventListener("open", () => (ws.send(JSON.stringify({ type: "hello", agent: "remote", protocol: 1 })), resolve())));
}

async function rawPublisher(): Promise<() => void> {
  const ws = new WebSocket(o.url);
  await new Promise((resolve) => ws.addEventListener("open", resolve));
  return () =>
    pace(
      (text, seq) => ws.send(JSON.stringify({ event: "delta", chat_id: CHAT, text, stream_id: "2:0", turn_id: TURN, seq })),
      () => {},
    );
}

const startRaw = o.side === "raw" ? await rawPublisher() : undefined;
if (o.side === "agentgate") await agentPublisher();
const subs: WebSocket[] = [];
for (let i = 0; i < o.subscribers; i++) subs.push(await subscriber(o.subscriberUrls?.[i % o.subscriberUrls.length] ?? o.url));
report({ ready: subs.length });

const t0 = performance.now();
if (o.stallEveryMs > 0) {
  stall();
  const timer = setInterval(stall, o.stallEveryMs);
  void allDone.then(() => clearInterval(timer));
}
/** The client that starts the turn: on the agent's gateway when subscribers are on another. */
const starter = o.subscriberUrls ? await new Promise<WebSocket>((resolve) => {
  const ws = new WebSocket(o.url);
  ws.addEventListener("message", () => resolve(ws), { once: true });
}) : subs[0]!;
if (startRaw) startRaw();
else starter.send(JSON.stringify({ type: "message", chat_id: CHAT, content: "go" }));
await allDone;

latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
report({ deltas: latencies.length, seconds: (performance.now() - t0) / 1000, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: at(1), gaps, stalled: stalled.length });
for (const s of stalled) s.destroy();
process.exit(0);
