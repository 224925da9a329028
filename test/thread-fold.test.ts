/**
 * The thread fold (src/chat/thread.ts) on its own: the WebUI's schemaVersion 3
 * messages from a chat's events, for the cases black-box turns rarely produce.
 */
import { expect, test } from "bun:test";
import { foldThread } from "../src/chat/thread.ts";

const NOW = 1_000;

test("segments, reasoning, trace rows, file edits, stream_end text and latency fold into bubbles", () => {
  const media = [{ url: "/api/media/s/p", name: "a.png" }];
  const events = [
    { event: "user", seq: 1, text: "hi", media_urls: media },
    { event: "goal_status", seq: 2, status: "running" },
    { event: "reasoning_delta", seq: 3, text: "think" },
    { event: "reasoning_delta", seq: 4, text: "ing" },
    { event: "delta", seq: 5, text: "Hel" },
    { event: "delta", seq: 6, text: "lo" },
    { event: "stream_end", seq: 7 },
    { event: "message", seq: 8, kind: "tool_hint", text: "read_file", tool_events: [{ name: "read_file" }] },
    { event: "file_edit", seq: 9, edits: [{ path: "a.ts" }] },
    { event: "delta", seq: 10, text: "draft" },
    { event: "stream_end", seq: 11, text: "final text" },
    { event: "turn_end", seq: 12, latency_ms: 42 },
    { event: "user", seq: 13, text: "again" },
    { event: "message", seq: 14, text: "one shot" },
    { event: "turn_end", seq: 15, latency_ms: 7 },
  ];
  expect(foldThread(events, NOW)).toEqual([
    { id: "u-1", role: "user", content: "hi", media, createdAt: 1_000 },
    { id: "a-3", role: "assistant", content: "Hello", reasoning: "thinking", createdAt: 1_001 },
    { id: "t-8", role: "tool", kind: "trace", content: "", traces: ["read_file"], toolEvents: [{ name: "read_file" }], createdAt: 1_002 },
    { id: "f-9", role: "tool", kind: "trace", content: "", traces: [], fileEdits: [{ path: "a.ts" }], createdAt: 1_003 },
    { id: "a-10", role: "assistant", content: "final text", latencyMs: 42, createdAt: 1_004 },
    { id: "u-13", role: "user", content: "again", createdAt: 1_005 },
    { id: "a-14", role: "assistant", content: "one shot", latencyMs: 7, createdAt: 1_006 },
  ]);
});

test("a turn without assistant text gets no latency stamp, and a previous turn's bubble is never stamped again", () => {
  const events = [
    { event: "user", seq: 1, text: "a" },
    { event: "delta", seq: 2, text: "x" },
    { event: "turn_end", seq: 3, latency_ms: 5 },
    { event: "user", seq: 4, text: "b" },
    { event: "turn_end", seq: 5, latency_ms: 9 },
  ];
  const folded = foldThread(events, NOW);
  expect(folded.map((m) => [m.id, m.latencyMs])).toEqual([
    ["u-1", undefined],
    ["a-2", 5],
    ["u-4", undefined],
  ]);
});
