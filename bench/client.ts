/**
 * A load-generating client process. It opens N WebSockets to 127.0.0.1 and
 * reports on stdout, one JSON object per line, so run.ts can use several such
 * processes at once. Every wait is bounded; the process exits by itself.
 *
 * argv: <url> <sockets> <mode> <expectedPerSocket> [arg]
 *   mode "room": each socket joins chat "bench" (agentgate) and waits for frames;
 *   mode "own":  on "go" (stdin) each socket starts a stream in its own chat;
 *   mode "idle": sockets just stay open until stdin closes.
 * Frames are counted without JSON.parse (the client is the usual bottleneck);
 * `seq` is read to detect gaps and reordering.
 */
const [url, socketsArg, mode, expectedArg, arg = ""] = process.argv.slice(2) as [string, string, string, string, string?];
const sockets = Number(socketsArg);
const expected = Number(expectedArg);
const isAgentgate = !url.includes("raw=1");
const OPEN_BATCH = 250;
const MAX_LIFETIME_MS = 5 * 60_000;
setTimeout(() => {
  report({ error: "client lifetime exceeded" });
  process.exit(2);
}, MAX_LIFETIME_MS).unref();

function report(obj: object) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

interface Sub {
  ws: WebSocket;
  chatId: string;
  deltas: number;
  lastSeq: number;
}

let done = 0;
let gaps = 0;
const subs: Sub[] = [];

function onFrame(sub: Sub, data: string) {
  if (!data.includes('"event":"delta"')) return;
  const seq = Number(data.slice(data.lastIndexOf('"seq":') + 6, -1));
  if (sub.lastSeq !== 0 && seq !== sub.lastSeq + 1) gaps++;
  sub.lastSeq = seq;
  if (++sub.deltas < expected) return;
  // This socket has the whole stream; a next stream (the bench's warm-up was the first) counts afresh.
  sub.deltas = 0;
  sub.lastSeq = 0;
  if (++done < sockets) return;
  done = 0;
  report({ done: Date.now(), frames: sockets * expected, gaps });
}

function open(): Promise<Sub> {
  return new Promise((resolve, reject) => {
    const sub: Sub = { ws: new WebSocket(url), chatId: "", deltas: 0, lastSeq: 0 };
    sub.ws.addEventListener("error", () => reject(new Error("socket error")));
    sub.ws.addEventListener("message", (e) => {
      const data = e.data as string;
      if (sub.chatId === "" && isAgentgate) {
        // The first frame is `ready`; in room mode the next reply is `attached`.
        sub.chatId = mode === "room" ? "bench" : (JSON.parse(data).chat_id as string);
        if (mode !== "room") return resolve(sub);
        sub.ws.send(JSON.stringify({ type: "attach", chat_id: "bench" }));
        return;
      }
      if (sub.deltas === 0 && data.includes('"event":"attached"')) return resolve(sub);
      onFrame(sub, data);
    });
    if (!isAgentgate) sub.ws.addEventListener("open", () => resolve(sub));
  });
}

for (let i = 0; i < sockets; i += OPEN_BATCH) {
  subs.push(...(await Promise.all(Array.from({ length: Math.min(OPEN_BATCH, sockets - i) }, open))));
}
report({ ready: subs.length });

for await (const line of console) {
  if (line.trim() !== "go") continue;
  for (const sub of subs) {
    sub.ws.send(isAgentgate ? JSON.stringify({ type: "message", chat_id: sub.chatId, content: arg }) : `own ${expected} ${arg}`);
  }
}
process.exit(0);
