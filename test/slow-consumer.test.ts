/**
 * Slow consumers (#11 item 5): a client that stops reading on a fast-streaming
 * chat is closed with CLOSE_SLOW_CONSUMER, a reader beside it misses nothing, and
 * the stalled client resumes with since_seq and gets every event it had not seen.
 *
 * The stalled client is a real WebSocket client over a raw TCP socket whose
 * reading is paused, because a WebSocket object cannot stop reading.
 */
import { describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { resolveConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { CLOSE_SLOW_CONSUMER, SLOW_CONSUMER_REASON } from "../src/protocol/errors.ts";
import { type Frame, isTurnEnd, onCleanup, startTestGateway, TestClient } from "./helpers.ts";
import { moved, scrape } from "./metrics-scrape.ts";

const OPCODE_TEXT = 1;
const OPCODE_CLOSE = 8;

/** A WebSocket client on a plain TCP socket: it can stop reading, and sees exactly the bytes the server sent. */
class PausableClient {
  #received = Buffer.alloc(0);
  #headerEnd = -1;
  #wake: (() => void) | undefined;
  readonly ended: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.#received = Buffer.concat([this.#received, chunk]);
      if (this.#headerEnd < 0) this.#headerEnd = this.#received.indexOf("\r\n\r\n");
      this.#wake?.();
    });
    this.ended = new Promise((resolve) => socket.on("close", () => resolve()));
    onCleanup(() => void socket.destroy());
  }

  static async open(port: number): Promise<PausableClient> {
    const client = new PausableClient(connect(port, "127.0.0.1"));
    client.socket.write(
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    await client.until((p) => p.texts.length > 0);
    return client;
  }

  /** Complete frames received so far: text payloads, and the close frame if one came. */
  parsed(): { texts: string[]; close?: { code: number; reason: string } } {
    const bytes = this.#received;
    const texts: string[] = [];
    let close: { code: number; reason: string } | undefined;
    let at = this.#headerEnd < 0 ? bytes.length : this.#headerEnd + 4;
    while (at + 2 <= bytes.length) {
      const opcode = bytes[at]! & 0x0f;
      let length = bytes[at + 1]! & 0x7f;
      let header = 2;
      if (length === 126) [length, header] = [bytes.readUInt16BE(at + 2), 4];
      else if (length === 127) [length, header] = [Number(bytes.readBigUInt64BE(at + 2)), 10];
      if (at + header + length > bytes.length) break;
      const payload = bytes.subarray(at + header, at + header + length);
      if (opcode === OPCODE_TEXT) texts.push(payload.toString("utf8"));
      if (opcode === OPCODE_CLOSE) close = { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString("utf8") };
      at += header + length;
    }
    return { texts, ...(close && { close }) };
  }

  async until(done: (p: ReturnType<PausableClient["parsed"]>) => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.parsed())) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for frames");
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, Math.min(left, 200));
      });
    }
  }
}

const seqsOf = (frames: Frame[]) => frames.filter((f) => typeof f.seq === "number").map((f) => f.seq as number);
const consecutive = (seqs: number[]) => seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1);

describe("slow consumers", () => {
  test("a client that stops reading is closed with 4001; a reader beside it misses nothing; it resumes with since_seq and gets everything", async () => {
    const logged: string[] = [];
    const gw = await startTestGateway(
      {
        // About 11 MB of deltas: far more than the kernel's loopback socket buffers (~5 MB) hold for a paused reader.
        echo_chunk_size: 1000,
        echo_repeat: 10_000,
        // Well above what the resume below queues at once (replay batches, then the events not yet in the transcript file).
        slow_consumer_bytes: 1024 * 1024,
        slow_consumer_check_ms: 10,
        replay_buffer_bytes: 16 * 1024,
      },
      createLogger("warn", "text", (line) => logged.push(line)),
    );
    const port = gw.listeners.find((l) => l.transport === "tcp")!.server.port!;
    const metricsBefore = await scrape(gw);

    const stalled = await PausableClient.open(port);
    const ready = JSON.parse(stalled.parsed().texts[0]!) as Frame;
    const chatId = ready.chat_id as string;
    stalled.socket.pause();

    const { client: reader } = await TestClient.ready(gw.wsUrl("tcp"));
    reader.send({ type: "attach", chat_id: chatId });
    await reader.until((f) => f.event === "attached");
    reader.send({ type: "message", chat_id: chatId, content: "abcdefghij".repeat(100) });
    const live = await reader.until(isTurnEnd, 60_000);
    const liveSeqs = seqsOf(live);
    expect(consecutive(liveSeqs)).toBe(true);
    expect(live.filter((f) => f.event === "delta")).toHaveLength(10_000);

    // The stalled client reads again: every frame that was queued for it, then the close frame.
    stalled.socket.resume();
    await stalled.until((p) => p.close !== undefined);
    const { texts, close } = stalled.parsed();
    expect(close).toEqual({ code: CLOSE_SLOW_CONSUMER, reason: SLOW_CONSUMER_REASON });
    const seen = texts.slice(1).map((t) => JSON.parse(t) as Frame);
    const seenSeqs = seqsOf(seen);
    expect(seenSeqs[0]).toBe(liveSeqs[0]!);
    expect(consecutive(seenSeqs)).toBe(true);
    const lastSeen = seenSeqs.at(-1)!;
    expect(lastSeen).toBeLessThan(liveSeqs.at(-1)!);
    expect(seen).toEqual(live.filter((f) => f.seq !== undefined && f.seq <= lastSeen));
    expect(logged.some((l) => l.includes("closed a slow consumer") && l.includes(`client_id=${ready.client_id}`) && l.includes(chatId) && /buffered_bytes=\d+/.test(l))).toBe(true);
    expect(moved(metricsBefore, await scrape(gw), "agentgate_slow_consumer_closes_total")).toBe(1);

    // It resumes from the last seq it saw and gets exactly the rest.
    const { client: resumed } = await TestClient.ready(gw.wsUrl("tcp"));
    resumed.send({ type: "attach", chat_id: chatId, since_seq: lastSeen });
    const rest = (await resumed.until(isTurnEnd, 30_000)).filter((f) => f.seq !== undefined);
    expect(rest).toEqual(live.filter((f) => f.seq !== undefined && f.seq > lastSeen));
  }, 90_000);

  test("the cap sits between what a resume queues and Bun's backstop; config outside that order is refused", () => {
    const MiB = 1024 * 1024;
    expect(() => resolveConfig({ slow_consumer_bytes: 16 * MiB, backpressure_limit_bytes: 16 * MiB })).toThrow("slow_consumer_bytes must be below backpressure_limit_bytes");
    expect(() => resolveConfig({ slow_consumer_bytes: 2 * MiB, replay_buffer_bytes: 1.5 * MiB })).toThrow("must not exceed half of slow_consumer_bytes");
    expect(resolveConfig({}).config).toMatchObject({ slow_consumer_bytes: 4 * MiB, backpressure_limit_bytes: 16 * MiB });
  });
});
