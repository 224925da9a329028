/**
 * The baseline: a bare Bun.serve relay with native pub/sub and no app logic.
 * It publishes frames of the same shape and size as agentgate's delta events
 * (a uuid chat_id and turn_id, a short stream_id),
 * paced like the echo agent (a yield to the event loop every 64 frames), so the
 * ratio measures what agentgate's own code costs. A message that is itself a JSON
 * frame is relayed as is to every other socket (the latency baseline: a publisher's
 * frame in, native publish out). Loopback only; exits by itself.
 */
const YIELD_EVERY = 64;
const MAX_LIFETIME_MS = 10 * 60_000;
const uuid = "00000000-0000-4000-8000-000000000000";
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

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
        server.publish(topic, `{"event":"delta","chat_id":"${chatId}","text":"${text}","stream_id":"2:0","turn_id":"${uuid}","seq":${seq}}`);
        if (seq % YIELD_EVERY === 0) await yieldToLoop();
      }
    },
    maxPayloadLength: 1 << 20,
  },
});
process.stdout.write(`${server.port}\n`);
setTimeout(() => process.exit(0), MAX_LIFETIME_MS).unref();
