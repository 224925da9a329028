/**
 * No server path in any delta (issue #12 item 6): a stream of 10 000 random
 * deltas mixing text, complete and split markdown images (inside and outside the
 * allowed roots, with titles, with ")" in alt text, URL targets) from an agent we
 * control. No delta may name a server path, and the assembled deltas must equal
 * the stream_end text.
 */
import { expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isTurnEnd, startTestGateway, tempDir } from "./helpers.ts";
import { chatServedByRemote, RemoteAgent, remoteAgentConfig } from "./remote-agent.ts";
import { PNG_BYTES, seededRandom } from "./test-data.ts";

const DELTAS = 10_000;


test("10 000 random deltas with images: no delta names a server path; assembled deltas equal the stream_end text", async () => {
  const root = tempDir("agentgate-images-");
  const inside = join(root, "workspace");
  const outside = join(root, "elsewhere");
  for (const dir of [inside, outside]) mkdirSync(dir);
  for (const file of [join(inside, "a.png"), join(inside, "b.png"), join(outside, "c.png"), join(inside, "notes.txt")]) writeFileSync(file, PNG_BYTES);
  const targets = [join(inside, "a.png"), `<${join(inside, "b.png")}>`, join(outside, "c.png"), join(inside, "missing.png"), join(inside, "notes.txt"), "https://example.com/x.png"];
  const alts = ["chart", "fig (1)", "a)b", ""];
  const titles = ["", ' "a title"', " 'its (title)'"];
  const words = ["hello ", "wow! ", "[not an image] ", "!", "![", "] (", "plain text ", "\n", "1) ", "x"];

  const seed = Date.now();
  const next = seededRandom(seed);
  const pick = <T>(list: T[]) => list[Math.floor(next() * list.length)]!;
  let text = "";
  while (text.length < DELTAS * 4) text += next() < 0.15 ? `![${pick(alts)}](${pick(targets)}${pick(titles)})` : pick(words);
  // Ends inside what may still be an image (an unclosed title) holding a complete one: flushed at stream_end.
  text += ` end ![open](notes.png "unclosed ![last](${join(inside, "a.png")})`;
  const cuts = new Set<number>();
  while (cuts.size < DELTAS - 1) cuts.add(1 + Math.floor(next() * (text.length - 1)));
  const bounds = [0, ...[...cuts].sort((a, b) => a - b), text.length];
  const chunks = bounds.slice(1).map((end, i) => text.slice(bounds[i], end));

  const gw = await startTestGateway(remoteAgentConfig({ media_allowed_roots: [inside] }));
  const agent = await RemoteAgent.connect(gw);
  const { client, chatId } = await chatServedByRemote(gw);
  client.send({ type: "message", chat_id: chatId, content: "draw" });
  const turn = await agent.next("turn");
  for (const chunk of chunks) agent.send({ type: "delta", turn_id: turn.turn_id, text: chunk });
  agent.send({ type: "stream_end", turn_id: turn.turn_id, text });
  agent.send({ type: "turn_end", turn_id: turn.turn_id, status: "done" });
  const frames = await client.until(isTurnEnd, 60_000);

  const deltas = frames.filter((f) => f.event === "delta").map((f) => f.text as string);
  expect(deltas.length).toBeGreaterThan(DELTAS / 4);
  // A path split over several deltas leaks too: check each delta and what a client assembles from them.
  const leaks = [...deltas, deltas.join("")].filter((d) => d.includes(root) || d.includes(gw.config.data_dir) || d.includes(tmpdir()));
  expect({ seed, leaks: leaks.length }).toEqual({ seed, leaks: 0 });
  const end = frames.find((f) => f.event === "stream_end")!;
  expect(end.text).not.toContain(root);
  expect({ seed, equal: deltas.join("") === end.text }).toEqual({ seed, equal: true });
  // Every image inside the root was published, every other local one became its alt text.
  const published = text.split(join(inside, "a.png")).length + text.split(join(inside, "b.png")).length - 2;
  expect(end.text.split("](/api/media/").length - 1).toBe(published);
  expect(end.text.split("](https://example.com/x.png").length).toBe(text.split("](https://example.com/x.png").length);
}, 60_000);
