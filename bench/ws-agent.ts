/**
 * A load-generating agent for the bench: connects in over WebSocket to
 * 127.0.0.1 with the agent token, says hello, and answers every turn with N
 * deltas of 100 characters. Exits by itself after its lifetime.
 * argv: <agent url with ?token=> <name> <deltas>
 */
const [url, name, countArg] = process.argv.slice(2) as [string, string, string];
const count = Number(countArg);
const MAX_LIFETIME_MS = 5 * 60_000;
setTimeout(() => process.exit(0), MAX_LIFETIME_MS).unref();

const text = "x".repeat(100);
const ws = new WebSocket(url);
ws.addEventListener("open", () => {
  ws.send(JSON.stringify({ type: "hello", agent: name, protocol: 1 }));
  process.stdout.write(`${JSON.stringify({ ready: 1 })}\n`);
});
ws.addEventListener("message", (e) => {
  const frame = JSON.parse(String(e.data)) as { type: string; turn_id: string };
  if (frame.type !== "turn") return;
  const prefix = `{"type":"delta","turn_id":"${frame.turn_id}","text":"${text}"}`;
  for (let i = 0; i < count; i++) ws.send(prefix);
  ws.send(JSON.stringify({ type: "stream_end", turn_id: frame.turn_id }));
  ws.send(JSON.stringify({ type: "turn_end", turn_id: frame.turn_id, status: "done" }));
});
ws.addEventListener("close", () => process.exit(0));
