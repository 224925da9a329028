#!/usr/bin/env node
/**
 * Streams one turn from agentgate and survives gateway restarts on the way.
 * Runs unchanged under Bun and Node ≥ 22 (Node 20: node --experimental-websocket).
 *
 *   node examples/stream-turn.mjs --url ws://127.0.0.1:8765/ --bootstrap http://127.0.0.1:8765 "hello"
 *
 * Every (re)connect takes a fresh token from /webui/bootstrap; the chat resumes
 * after the last seq it saw. Text streams to stdout as it arrives; a turn the
 * restart cut off (cancelled or interrupted) is asked again on a new line, so the
 * last line of stdout is one complete answer.
 */
import { bootstrapToken, connect } from "agentgate/client";

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? undefined : args.splice(i, 2)[1];
};
const url = option("url") ?? "ws://127.0.0.1:8765/";
const baseUrl = option("bootstrap") ?? url.replace(/^ws/, "http").replace(/\/[^/]*$/, "");
const text = args.join(" ") || "hello";

const client = connect({ url, getToken: bootstrapToken({ baseUrl }) });
client.on("reconnecting", (e) => console.error(`[reconnecting in ${e.delay_ms} ms after close ${e.code}]`));
client.on("open", () => console.error("[connected]"));
client.on("auth_failed", () => {
  console.error("[not authorized]");
  process.exit(1);
});

const chat = await client.newChat();
chat.on("delta", (e) => process.stdout.write(e.text));
for (let attempt = 1; attempt <= 5; attempt++) {
  const turn = chat.nextTurn();
  await chat.send(text);
  const { status } = await turn;
  process.stdout.write("\n");
  if (status === "done") break;
  console.error(`[turn ${status}; asking again]`);
}
await client.close();
