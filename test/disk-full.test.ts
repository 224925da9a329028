/**
 * Storage faults are loud and lossless, on a real full disk: the gateway runs as
 * its own process with its data directory on a small tmpfs (mounted here; tests
 * run as root, as in CI). Fill the disk, stream, free it, stream, restart: the
 * process never dies, clients are told, nothing is shown before it is written,
 * held events are published once space returns, and after the restart the
 * replay holds every event clients saw, once each, valid, in seq order. Every
 * failure is counted on /metrics (agentgate_storage_faults_total by kind).
 */
import { expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../src/log.ts";
import { CommitLog, leftoverRecords } from "../src/store/commit-log.ts";
import { readTranscript, TranscriptWriter } from "../src/store/transcript.ts";
import { registry } from "../src/metrics/metrics.ts";
import { BUN, type Frame, isTurnEnd, onCleanup, REPO_ROOT, spawnServe, TestClient, tempDir } from "./helpers.ts";
import { moved, samples, scrape } from "./metrics-scrape.ts";

const MAIN = join(REPO_ROOT, "src/main.ts");
const DISK = "4m";

/** Mounts a tmpfs of `size` on a fresh folder and unmounts it after the test. */
function smallDisk(size: string): string {
  const dir = join(tempDir("agentgate-full-"), "disk");
  mkdirSync(dir);
  const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  if (mount.exitCode !== 0) throw new Error(`this test mounts a tmpfs and needs root: ${mount.stderr.toString()}`);
  onCleanup(() => void Bun.spawnSync(["umount", "-l", dir]));
  return dir;
}

/** Writes a filler file until the disk refuses (ENOSPC); returns its path. */
function fill(dir: string): string {
  const path = join(dir, "filler");
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(16 * 1024, 1);
  try {
    for (let i = 0; i < 100_000; i++) writeSync(fd, chunk);
    throw new Error("the disk never filled up");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
  } finally {
    closeSync(fd);
  }
  return path;
}

const seqOrder = (frames: Frame[]) => frames.filter((f) => typeof f.seq === "number").map((f) => f.seq as number);

test("disk full: fill, stream, free, stream, restart — the gateway stays up and loses nothing a client saw", async () => {
  const disk = smallDisk(DISK);
  const sock = join(tempDir(), "gw.sock");
  const args = [BUN, MAIN, "--tcp-enabled=false", `--unix-socket-path=${sock}`, "--websocket-requires-token=false", `--data-dir=${disk}/data`];
  const gw = await spawnServe([...args, "--echo-chunk-size=4", "--echo-repeat=20", "--echo-delay-ms=1", "--transcript-retry-ms=50", "--log-level=error"]);
  const url = `ws+unix://${sock}:/`;
  const { client, ready } = await TestClient.ready(url);
  const chat_id = ready.chat_id;
  const seen: Frame[] = [];
  const turn = async (content: string) => {
    client.send({ type: "message", chat_id, content });
    const frames = await client.until(isTurnEnd, 20_000);
    seen.push(...frames.filter((f) => typeof f.seq === "number"));
    return frames;
  };
  await turn("before the disk fills");
  const metricsBefore = await scrape({ unix: sock });

  const filler = fill(disk);
  client.send({ type: "message", chat_id, content: "while the disk is full" });
  const told = await client.until((f) => f.event === "error", 10_000);
  expect(told.at(-1)).toMatchObject({ event: "error", detail: "storage_unavailable", chat_id });
  // Nothing of the turn may be shown while it cannot be written.
  expect(told.filter((f) => typeof f.seq === "number")).toEqual([]);
  await Bun.sleep(300);
  expect(client.frames.filter((f) => typeof f.seq === "number")).toEqual([]);
  // A chat that never existed cannot reserve a seq: it is told, and shown nothing.
  const other = await TestClient.ready(url);
  other.client.send({ type: "message", chat_id: "fresh", content: "hi" });
  const refused = await other.client.until((f) => f.event === "error", 10_000);
  expect(refused.at(-1)).toMatchObject({ event: "error", detail: "storage_unavailable", chat_id: "fresh" });
  expect(refused.filter((f) => typeof f.seq === "number")).toEqual([]);
  expect(gw.proc.exitCode).toBeNull();
  // Both failures are counted on /metrics: the commit (retried every 50 ms while full) and the refused reservation.
  const metricsFull = await scrape({ unix: sock });
  expect(moved(metricsBefore, metricsFull, 'agentgate_storage_faults_total{kind="commit"}')).toBeGreaterThan(0);
  expect(moved(metricsBefore, metricsFull, 'agentgate_storage_faults_total{kind="seq_reserve"}')).toBe(1);

  rmSync(filler);
  const held = await client.until(isTurnEnd, 20_000);
  seen.push(...held.filter((f) => typeof f.seq === "number"));
  expect(held.filter((f) => f.event === "delta").map((f) => f.text).join("")).toBe("while the disk is full".repeat(20));
  await turn("after the disk was freed");
  expect(seqOrder(seen)).toEqual(seqOrder(seen).map((_, i) => i + 1));

  gw.proc.kill("SIGTERM");
  expect(await gw.proc.exited).toBe(0);
  await spawnServe([...args, "--log-level=error"]);
  const again = await TestClient.ready(url);
  again.client.send({ type: "attach", chat_id, since_seq: 0 });
  expect(await again.client.next()).toMatchObject({ event: "attached", latest_seq: seen.at(-1)!.seq });
  expect(await again.client.until((f) => f.seq === seen.at(-1)!.seq)).toEqual(seen);
  await again.client.expectQuiet();
}, 90_000);

/** A line of `bytes` characters with its seq, as the hub would store it. */
const event = (seq: number, bytes = 300) => ({ event: "message", chat_id: "c", text: "x".repeat(bytes), seq });

test("commit log: a write that fails on a full disk leaves the file as it was; the kept batch lands whole later", () => {
  const disk = smallDisk("1m");
  const dir = join(disk, "log");
  const log = new CommitLog({ dir, segmentBytes: 64 * 1024 * 1024 });
  const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify(event(i + 1)));
  for (const line of lines.slice(0, 10)) log.append("c", line);
  log.commit();
  const segment = join(dir, readdirOnly(dir));
  const before = statSync(segment).size;
  const filler = fill(disk);
  for (const line of lines.slice(10)) log.append("c", line);
  expect(() => log.commit()).toThrow(/ENOSPC/);
  expect(statSync(segment).size).toBe(before);
  rmSync(filler);
  log.commit();
  log.close();
  expect([...leftoverRecords(dir)].map((r) => r.line)).toEqual(lines);
});

test("transcript: a failed write is cut back and retried; the file never holds a partial line", async () => {
  const disk = smallDisk("1m");
  const dir = join(disk, "t");
  const w = new TranscriptWriter({ dir, flushMs: 5, retryMs: 20, maxLineBytes: 64 * 1024, maxOpenFiles: 2, log: createLogger("error") });
  const sent = Array.from({ length: 200 }, (_, i) => event(i + 1, 2000));
  for (const e of sent.slice(0, 20)) w.append("c", e.seq, JSON.stringify(e), e);
  expect(await w.flush()).toBe(true);
  const faults = () => samples(registry.render()).get('agentgate_storage_faults_total{kind="transcript"}') ?? 0;
  const faultsBefore = faults();
  const filler = fill(disk);
  for (const e of sent.slice(20)) w.append("c", e.seq, JSON.stringify(e), e);
  expect(await w.flush()).toBe(false);
  // What /metrics renders from this process's registry: the failed write is counted.
  expect(faults()).toBeGreaterThan(faultsBefore);
  expect(readFileSync(join(dir, "c.jsonl"), "utf8").endsWith("\n")).toBe(true);
  rmSync(filler);
  // The retry timer writes the kept batch; wait for it (bounded).
  for (let i = 0; i < 100 && !readFileSync(join(dir, "c.jsonl"), "utf8").includes(`"seq":200}`); i++) await Bun.sleep(20);
  const read: number[] = [];
  for await (const { seq } of readTranscript(join(dir, "c.jsonl"), 0)) read.push(seq);
  expect(read).toEqual(sent.map((e) => e.seq));
  expect(readFileSync(join(dir, "c.jsonl"), "utf8").split("\n").filter(Boolean)).toHaveLength(200);
  await w.close(false);
});

function readdirOnly(dir: string): string {
  const names = readdirSync(dir);
  expect(names).toHaveLength(1);
  return names[0]!;
}
