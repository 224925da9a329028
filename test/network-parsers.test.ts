/**
 * The parsers that face the network, fed hostile framing: multipart bodies
 * split at every byte, RFC 5987 and escaped-quote file names, truncated bodies;
 * SSE from an OpenAI-compatible server split at every byte, with multi-line
 * data, comments and events that are not JSON chunks (which must not end the turn).
 */
import { describe, expect, test } from "bun:test";
import { firstFilePart } from "../src/media/multipart.ts";
import { isTurnEnd, onCleanup, startTestGateway, TestClient } from "./helpers.ts";

const BOUNDARY = "----agentgateFuzzBoundary7MA4YWxkTrZu0gW";
const CONTENT_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;
const FILE = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(`\r\n--${BOUNDARY.slice(0, 10)} almost a boundary\r\n`), Buffer.alloc(40, 7)]);

function multipartBody(disposition: string, file = FILE, closing = true): Buffer {
  return Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n`),
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; ${disposition}\r\nContent-Type: image/png\r\n\r\n`),
    file,
    Buffer.from(closing ? `\r\n--${BOUNDARY}--\r\n` : ""),
  ]);
}

/** A stream delivering `body` in the given pieces. */
function streamOf(body: Buffer, cuts: number[]): ReadableStream<Uint8Array> {
  const edges = [0, ...cuts, body.length];
  const pieces = edges.slice(1).map((end, i) => body.subarray(edges[i], end));
  return new ReadableStream({
    pull(c) {
      const next = pieces.shift();
      if (next === undefined) c.close();
      else c.enqueue(new Uint8Array(next));
    },
  });
}

async function readPart(body: Buffer, cuts: number[]) {
  const part = await firstFilePart(streamOf(body, cuts), CONTENT_TYPE);
  if (!part) return undefined;
  const chunks: Uint8Array[] = [];
  for await (const chunk of part.data) chunks.push(chunk);
  return { name: part.name, mime: part.mime, bytes: Buffer.concat(chunks) };
}

describe("multipart (busboy behind firstFilePart)", () => {
  test("a body split at every byte position, and byte by byte, yields the same file", async () => {
    const body = multipartBody('filename="shot.png"');
    for (let cut = 1; cut < body.length; cut++) {
      const part = await readPart(body, [cut]);
      expect([cut, part?.name, part?.bytes.equals(FILE)]).toEqual([cut, "shot.png", true]);
    }
    const bytewise = await readPart(body, Array.from({ length: body.length - 1 }, (_, i) => i + 1));
    expect(bytewise?.bytes.equals(FILE)).toBe(true);
  });

  test("file names: RFC 5987 filename*, escaped quotes, paths stripped", async () => {
    const cases: [string, string][] = [
      ["filename*=UTF-8''%E2%82%AC%20rates.png", "€ rates.png"],
      ['filename="a\\"quoted\\".png"', 'a"quoted".png'],
      ['filename="../../etc/passwd.png"', "passwd.png"],
      ['filename="C:\\\\Users\\\\me\\\\pic.png"', "pic.png"],
    ];
    for (const [disposition, name] of cases) expect([disposition, (await readPart(multipartBody(disposition), []))?.name]).toEqual([disposition, name]);
  });

  test("a body that breaks off inside the file fails the reader; no file part or no boundary is undefined / throws", async () => {
    await expect(readPart(multipartBody('filename="x.png"', FILE, false), [17, 200])).rejects.toThrow();
    const fieldsOnly = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--${BOUNDARY}--\r\n`);
    expect(await readPart(fieldsOnly, [5])).toBeUndefined();
    expect(await readPart(Buffer.from("garbage without any boundary"), [])).toBeUndefined();
    expect(() => firstFilePart(streamOf(Buffer.from("x"), []), "multipart/form-data")).toThrow();
  });

  test("over HTTP: a multipart upload over the type's limit is a JSON 413 and leaves the gateway serving", async () => {
    const gw = await startTestGateway({ token: "t", media_max_image_bytes: 4096 });
    const big = multipartBody('filename="big.png"', Buffer.concat([FILE, Buffer.alloc(8192)]));
    const res = await gw.http("tcp", "/api/media", { method: "POST", body: streamOf(big, [100, 3000, 6000]), headers: { authorization: "Bearer t", "content-type": CONTENT_TYPE } });
    expect([res.status, await res.json()]).toEqual([413, { error: "image_rejected", reason: "size" }]);
    const cut = await gw.http("tcp", "/api/media", { method: "POST", body: multipartBody('filename="x.png"', FILE, false), headers: { authorization: "Bearer t", "content-type": CONTENT_TYPE } });
    expect([cut.status, await cut.json()]).toEqual([400, { error: "image_rejected", reason: "malformed body" }]);
    expect((await gw.http("tcp", "/health")).status).toBe(200);
  });

  test("a declared body over the derived limit is a JSON 413 from the gateway, not Bun's empty one", async () => {
    const gw = await startTestGateway({ token: "t" });
    const port = gw.listeners.find((l) => l.transport === "tcp")!.server.port!;
    const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data: (_s, d) => void (answer += d.toString()) } });
    let answer = "";
    socket.write(`POST /api/media HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer t\r\nContent-Type: video/mp4\r\nContent-Length: ${150 * 1024 * 1024}\r\n\r\n`);
    for (let i = 0; i < 100 && !answer.includes("}"); i++) await Bun.sleep(20);
    socket.end();
    expect(answer).toStartWith("HTTP/1.1 413");
    expect(answer).toContain('"error":"Payload Too Large"');
  });
});

test("a streamed JSON body over max_message_bytes on the publish API is a JSON 413", async () => {
  const gw = await startTestGateway({ token: "t", max_message_bytes: 2048 });
  const body = Buffer.from(JSON.stringify({ text: "x".repeat(4096) }));
  const res = await gw.http("tcp", "/api/chats/c1/messages", { method: "POST", body: streamOf(body, [1000, 3000]), headers: { authorization: "Bearer t", "content-type": "application/json" } });
  expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([413, "Payload Too Large"]);
  const small = await gw.http("tcp", "/api/chats/c1/messages", { method: "POST", body: JSON.stringify({ text: "hi" }), headers: { authorization: "Bearer t", "content-type": "application/json" } });
  expect(small.status).toBe(200);
});

/** An OpenAI-compatible server sending `sse` one byte per chunk. */
function byteWiseLLM(sse: string): string {
  const bytes = Buffer.from(sse);
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => new Response(streamOf(bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)), { headers: { "content-type": "text/event-stream" } }),
  });
  onCleanup(() => server.stop(true));
  return `http://127.0.0.1:${server.port}/v1`;
}

describe("SSE from an OpenAI-compatible server (eventsource-parser)", () => {
  test("byte-split events, multi-line data, comments and non-chunk events: the turn keeps every delta and ends done", async () => {
    const chunk = (content: unknown) => JSON.stringify({ choices: [{ delta: { content } }] });
    const sse = [
      ": keep-alive comment\n\n",
      `data: ${chunk("Hel")}\n\n`,
      "data: this is not JSON\n\n",
      "data: null\n\ndata: [1,2]\n\ndata: 42\n\n",
      `data: ${chunk(5)}\n\n`,
      `data: {"choices": [{"delta":\ndata:  {"content": "lo"}}]}\n\n`,
      `event: ping\r\ndata: ${chunk(" wor")}\r\n\r\n`,
      `id: 7\ndata: ${chunk("ld")}\n\n`,
      "data: [DONE]\n\n",
      `data: ${chunk(" AFTER DONE")}\n\n`,
    ].join("");
    const gw = await startTestGateway({ agent: "llm", agents: { llm: { type: "openai", base_url: byteWiseLLM(sse), model: "m" } } });
    const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
    client.send({ type: "message", chat_id: ready.chat_id, content: "hi" });
    const frames = await client.until(isTurnEnd, 20_000);
    expect(frames.filter((f) => f.event === "delta").map((f) => f.text).join("")).toBe("Hello world");
    expect(frames.find((f) => f.event === "turn_end")).toMatchObject({ status: "done" });
  });
});
