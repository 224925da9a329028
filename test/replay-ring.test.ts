/** The replay ring: bounded by count and bytes, but never lets go of an event the transcript does not hold yet. */
import { expect, test } from "bun:test";
import { ReplayRing } from "../src/chat/replay-ring.ts";

const filled = (n: number) => {
  const ring = new ReplayRing(0);
  for (let seq = 1; seq <= n; seq++) ring.push(seq, `f${seq}`);
  return ring;
};

test("evicts the oldest flushed events down to the count limit and reports the bytes freed", () => {
  const ring = filled(10);
  expect(ring.evict(10, { maxEvents: 4, maxBytes: 1 << 20 })).toBe(6 * "f1".length);
  expect([...ring.from(1)]).toEqual(["f7", "f8", "f9", "f10"]);
  expect(ring.diskOnlyThrough).toBe(6);
});

test("keeps events not yet in the transcript, whatever the limits", () => {
  const ring = filled(10);
  ring.evict(3, { maxEvents: 0, maxBytes: 0 });
  expect(ring.diskOnlyThrough).toBe(3);
  expect([...ring.from(1)]).toEqual(["f4", "f5", "f6", "f7", "f8", "f9", "f10"]);
});

test("the byte limit applies too; a seq window reads within what is kept, across compaction", () => {
  const ring = filled(100);
  ring.evict(100, { maxEvents: 1000, maxBytes: 20 });
  expect(ring.bytes).toBeLessThanOrEqual(20);
  expect([...ring.from(98, 99)]).toEqual(["f98", "f99"]);
  for (let seq = 101; seq <= 103; seq++) ring.push(seq, `f${seq}`);
  expect([...ring.from(ring.diskOnlyThrough + 1)].at(-1)).toBe("f103");
});
