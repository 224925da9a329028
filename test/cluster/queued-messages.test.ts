/** What a mirroring node reads off a chat's events as its writer's queued messages (run by a takeover). */
import { expect, test } from "bun:test";
import { QueuedMessages } from "../../src/cluster/queued-messages.ts";

const user = (text: string) => ({ event: "user", text, client_id: "c" });
const running = { event: "goal_status", status: "running", turn_id: "t" };

test("each turn start takes the oldest waiting message; the rest wait, in order", () => {
  const q = new QueuedMessages(9);
  q.observe("c1", 1, user("first"));
  q.observe("c1", 2, running);
  q.observe("c1", 5, user("second"));
  q.observe("c1", 6, user("third"));
  q.observe("c2", 7, user("other chat"));
  expect(q.take("c1")).toEqual([{ seq: 5, text: "second", clientId: "c", media: [] }, { seq: 6, text: "third", clientId: "c", media: [] }]);
  expect(q.take("c1")).toEqual([]);
  expect(q.take("c2").map((m) => m.text)).toEqual(["other chat"]);
});

test("a stop (its notice's `stopped` count) drops every waiting message; a message closed unrun at shutdown drops the oldest; an agent's message does not count as a stop", () => {
  const q = new QueuedMessages(9);
  for (const [seq, e] of [[1, user("a")], [2, running], [3, user("b")], [4, user("c")], [5, { event: "message", text: "Stopped 3 task(s).", stopped: 3 }], [6, user("d")]] as const) q.observe("c1", seq, e);
  q.observe("c1", 7, { event: "message", text: "Stopped 1 task(s).", turn_id: "agent-turn" });
  expect(q.take("c1").map((m) => m.text)).toEqual(["d"]);
  for (const [seq, e] of [[10, user("e")], [11, running], [12, user("f")], [13, user("g")], [14, { event: "turn_end", status: "error", error: "gateway_shutdown", turn_id: "u" }]] as const) q.observe("c1", seq, e);
  expect(q.take("c1").map((m) => m.text)).toEqual(["g"]);
});

test("bounded per chat: the oldest goes first", () => {
  const q = new QueuedMessages(2);
  for (let i = 1; i <= 5; i++) q.observe("c1", i, user(`m${i}`));
  expect(q.take("c1").map((m) => m.seq)).toEqual([4, 5]);
});

test("a waiting message keeps its user event's media URLs (well-formed items only)", () => {
  const q = new QueuedMessages(9);
  q.observe("c1", 1, { ...user("with media"), media_urls: [{ url: "/api/media/s/p", name: "a.png" }, { name: "no url" }, null, { url: "/api/media/s/q" }] });
  q.observe("c1", 2, { ...user("junk"), media_urls: "not a list" });
  expect(q.take("c1").map((m) => m.media)).toEqual([[{ url: "/api/media/s/p", name: "a.png" }, { url: "/api/media/s/q", name: "" }], []]);
});

test("a message that only reads like a stop (chats API or agent, same text, no `stopped` count) leaves the waiting messages alone", () => {
  const q = new QueuedMessages(9);
  for (const [seq, e] of [[1, user("a")], [2, running], [3, user("b")], [4, { event: "message", text: "Stopped 1 task(s)." }], [5, { event: "message", text: "Stopped 2 task(s)." }]] as const) q.observe("c1", seq, e);
  expect(q.take("c1").map((m) => m.text)).toEqual(["b"]);
});
