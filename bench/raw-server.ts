/**
 * The baseline: a bare Bun.serve relay with native pub/sub and no app logic.
 * It publishes frames of the same shape and size as agentgate's delta events
 * (a uuid chat_id and turn_id, a short stream_id),
 * paced like the echo agent (a yield to the event loop every 64 frames), so the
 * ratio measures what agentgate's own code costs. A message that is itself a JSON
 * frame is relayed as is to every other socket (the latency baseline: a publisher's
 * frame in, native publish out). Loopback only; exits by itself.
 *
 * `--durable=<file>` makes it the floor of a durable gateway instead (BENCH_FLOOR=1 in
 * run.ts): each event is built as an object and serialized once, appended to one
 * log file with one synchronous write per event-loop turn, and published only after
 * that write returned (durable before visible, group commit). No transcripts, no
 * replay ring, no turn bookkeeping: what is left is what no durable design avoids.
 * BENCH_FLOOR_COMMIT_BYTES=N also commits as soon as N bytes are staged: a loop turn
 * of the chats scenario stages ~15 MiB, and holding it to the turn's end costs the
 * floor more than the write does (page faults, GC).
 */
import { openSync, writeSync } from "node:fs";

const YIELD_EVERY = 64;
const MAX_LIFETIME_MS = 10 * 60_000;
const uuid = "00000000-0000-4000-8000-000000000000";
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
const durableFile = process.argv.find((a) => a.startsWith("--durable="))?.slice("--durable=".length);
const commitBytes = Number(process.env.BENCH_FLOOR_COMMIT_BYTES ?? Number.POSITIVE_INFINITY);

/** The floor's group commit: staged frames, written once per loop turn, then published. */
const log = durableFile === undefined ? undefined : { fd: openSync(durableFile, "a", 0o600), buffer: Buffer.allocUnsafe(1 << 20), length: 0, staged: [] as [string, string][] };

function commit(): void {
  if (!log) return;
  for (let written = 0; written < log.length; ) written += writeSync(log.fd, log.buffer, written, log.length - written);
  log.length = 0;
  for (const [topic, frame] of log.staged) server.publish(topic, frame);
  log.staged = [];
}

function send(topic: string, chatId: string, text: string, seq: number): void {
  if (!log) return void server.publish(topic, `{"event":"delta","chat_id":"${chatId}","text":"${text}","stream_id":"2:0","turn_id":"${uuid}","seq":${seq}}`);
  const frame = JSON.stringify({ event: "delta", chat_id: chatId, text, stream_id: "2:0", turn_id: uuid, seq });
  if (log.buffer.length - log.length < frame.length * 3 + chatId.length + 2) {
    const bigger = Buffer.allocUnsafe(Math.max(log.buffer.length * 2, log.length + frame.length * 3 + chatId.length + 2));
    log.buffer.copy(bigger, 0, 0, log.length);
    log.buffer = bigger;
  }
  log.length += log.buffer.write(`${chatId}\t`, log.length, "latin1");
  log.length += log.buffer.write(frame, log.length);
  log.buffer[log.length++] = 0x0a;
  if (log.staged.push([topic, frame]) === 1) setImmediate(commit);
  else if (log.length >= commitBytes) commit();
}

let nextTopic = 0;
const server = Bun.serve<{ own: string }>({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req, srv) {
    return srv.upgrade(req, { data: { own: `own:${nextTopic++}` } }) ? undefined : new Response("upgrade only", { status: 400 });
  },
  websocket: {
    open(ws) {
      ws.subscribe("room");
      ws.subscribe(ws.data.own);
    },
    // "room N TEXT" streams N frames to every socket; "own N TEXT" to the sender's own topic.
    async message(ws, raw) {
      if (typeof raw === "string" && raw.startsWith("{")) return void ws.publish("room", raw); // to every socket but the publisher
      const [target, count, text] = String(raw).split(" ");
      const topic = target === "room" ? "room" : ws.data.own;
      const chatId = target === "room" ? "bench" : uuid;
      for (let seq = 1; seq <= Number(count); seq++) {
        send(topic, chatId, text!, seq);
        if (seq % YIELD_EVERY === 0) await yieldToLoop();
      }
    },
    maxPayloadLength: 1 << 20,
  },
});
process.stdout.write(`${server.port}\n`);
setTimeout(() => process.exit(0), MAX_LIFETIME_MS).unref();
