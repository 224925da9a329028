/**
 * agentgate/client against a real gateway: streaming over TCP and the unix
 * socket, fresh tokens per connect, auth refusal, resend until acknowledged,
 * gaps, device tools, the sessions API and media upload.
 */
import { describe, expect, test } from "bun:test";
import { type Client, connect, GatewayApi, type HttpError, bootstrap, bootstrapToken } from "agentgate/client";
import { onCleanup, startTestGateway, stdioAgentConfig, type TestGateway } from "./helpers.ts";

const FAST = { initialMs: 5, maxMs: 50 };
const baseUrl = (gw: TestGateway) => `http://127.0.0.1:${gw.listeners.find((l) => l.transport === "tcp")!.server.port}`;

function open(options: Parameters<typeof connect>[0]): Client {
  const client = connect({ backoff: FAST, ...options });
  onCleanup(() => client.close());
  return client;
}

/** Closes the client's socket once it is open: the client must reconnect by itself. */
async function dropSocket(client: Client): Promise<void> {
  for (let i = 0; i < 100 && client.socket?.readyState !== 1; i++) await client.once("open");
  const reopened = client.once("open");
  client.socket!.close();
  await reopened;
}

describe("agentgate/client", () => {
  test("streams a turn over TCP and over the unix socket; the folded text is the agent's", async () => {
    const gw = await startTestGateway({ echo_chunk_size: 3 });
    for (const client of [open({ url: gw.wsUrl("tcp") }), open({ socketPath: gw.config.unix_socket_path })]) {
      const chat = await client.newChat();
      const turn = chat.nextTurn();
      expect((await chat.send("hello, gateway")).duplicate).toBe(false);
      expect(await turn).toMatchObject({ chat_id: chat.id, text: "hello, gateway", status: "done" });
    }
  });

  test("events as an async iterator (client and chat) and as callbacks; ping answers pong", async () => {
    const gw = await startTestGateway({ echo_chunk_size: 2 });
    const client = open({ url: gw.wsUrl("tcp") });
    const chat = await client.newChat();
    const pong = client.once("pong");
    expect(client.ping()).toBe(true);
    expect(await pong).toEqual({ event: "pong" });
    const fromClient: string[] = [];
    const clientDone = (async () => {
      for await (const e of client.events()) {
        fromClient.push(e.event);
        if (e.event === "turn_end") break;
      }
    })();
    const texts: string[] = [];
    chat.send("abcde");
    for await (const e of chat.events()) {
      if (e.event === "delta") texts.push(e.text);
      if (e.event === "turn") break;
    }
    await clientDone;
    expect(texts).toEqual(["ab", "cd", "e"]);
    // The ack comes once the user event is durable: after it, possibly after the whole (fast) turn.
    expect(fromClient.filter((e) => e !== "message_ack")).toEqual(["user", "goal_status", "delta", "delta", "delta", "stream_end", "turn_end"]);
  });

  test("a frame too big (1009) fails the pending send, is reported, and the client reconnects", async () => {
    const gw = await startTestGateway({ max_message_bytes: 1024 });
    const client = open({ url: gw.wsUrl("tcp") });
    const chat = await client.newChat();
    const refused = client.once("refused");
    const reopened = client.once("open");
    const big = chat.send("x".repeat(2000));
    expect(await refused).toMatchObject({ code: 1009 });
    await expect(big).rejects.toThrow("1009");
    await reopened;
    const turn = chat.nextTurn();
    await chat.send("small");
    expect((await turn).text).toBe("small");
  });

  test("client.chat(id) follows an existing chat from its whole history, then live", async () => {
    const gw = await startTestGateway();
    const writer = open({ url: gw.wsUrl("tcp") });
    const chat = await writer.newChat();
    const first = chat.nextTurn();
    await chat.send("history");
    await first;
    const reader = open({ socketPath: gw.config.unix_socket_path });
    const followed = reader.chat(chat.id);
    expect((await followed.nextTurn()).text).toBe("history");
    const live = followed.nextTurn();
    await chat.send("live");
    expect((await live).text).toBe("live");
    expect(followed.duplicatesDropped).toBe(0);
  });

  test("takes a fresh token from getToken before every connect", async () => {
    const gw = await startTestGateway({ websocket_requires_token: true });
    const tokens: string[] = [];
    const fetchToken = bootstrapToken({ baseUrl: baseUrl(gw) });
    const client = open({ url: gw.wsUrl("tcp"), getToken: async () => (tokens.push(await fetchToken()), tokens.at(-1)!) });
    const chat = await client.newChat();
    for (let i = 0; i < 3; i++) await dropSocket(client);
    const turn = chat.nextTurn();
    await chat.send("still here");
    expect((await turn).text).toBe("still here");
    expect(tokens.length).toBe(4);
    expect(new Set(tokens).size).toBe(4);
  });

  test("a refused upgrade (401) stops reconnecting and says so", async () => {
    const gw = await startTestGateway({ websocket_requires_token: true });
    let calls = 0;
    const client = open({ url: gw.wsUrl("tcp"), getToken: () => (calls++, "not-a-token") });
    const failed = client.once("auth_failed");
    expect(await failed).toMatchObject({ event: "auth_failed", code: 401 });
    await client.done;
    expect(calls).toBe(1);
  });

  test("getToken throwing an AuthError (bootstrap refused) stops reconnecting", async () => {
    const gw = await startTestGateway({ websocket_requires_token: true, token_issue_secret: "s3cret-s3cret-s3cret" });
    const client = open({ url: gw.wsUrl("tcp"), getToken: bootstrapToken({ baseUrl: baseUrl(gw), secret: "wrong" }) });
    expect(await client.once("auth_failed")).toMatchObject({ code: 401 });
  });

  test("a message sent while disconnected is delivered once after the reconnect", async () => {
    const gw = await startTestGateway();
    const client = open({ url: gw.wsUrl("tcp") });
    const chat = await client.newChat();
    const users: string[] = [];
    chat.on("user", (e) => users.push(e.text));
    const reopened = client.once("open");
    client.socket!.close();
    await client.once("close");
    const turn = chat.nextTurn();
    const ack = chat.send("queued while offline");
    await reopened;
    expect((await ack).duplicate).toBe(false);
    expect((await turn).text).toBe("queued while offline");
    await dropSocket(client);
    const second = chat.nextTurn();
    await chat.send("second");
    await second;
    expect(users).toEqual(["queued while offline", "second"]);
  });

  test("a chat deleted behind the client's back is reported as a gap, then followed again", async () => {
    const gw = await startTestGateway();
    const client = open({ url: gw.wsUrl("tcp") });
    const chat = await client.newChat();
    const turn = chat.nextTurn();
    await chat.send("before");
    await turn;
    const seen = chat.lastSeq;
    const { api_token } = await bootstrap({ baseUrl: baseUrl(gw) });
    await new GatewayApi({ baseUrl: baseUrl(gw), apiToken: api_token }).delete(chat.id);
    const gap = chat.once("gap");
    await dropSocket(client);
    expect(await gap).toMatchObject({ event: "gap", chat_id: chat.id, reason: "reset", seq: 0 });
    expect(chat.lastSeq).toBeLessThan(seen);
    const next = chat.nextTurn();
    await chat.send("after");
    expect((await next).text).toBe("after");
  });

  test("a registered device tool answers tool_request; a throwing handler answers ok: false", async () => {
    const gw = await startTestGateway(stdioAgentConfig());
    const client = open({ socketPath: gw.config.unix_socket_path });
    const asked: unknown[] = [];
    client.tools.register("camera", (args) => (asked.push(args), { photo: "x.png" }));
    client.tools.register("gps", () => {
      throw new Error("no fix");
    });
    const chat = await client.newChat();
    let turn = chat.nextTurn();
    await chat.send("tool camera");
    expect(JSON.parse((await turn).text)).toEqual({ ok: true, result: { photo: "x.png" } });
    expect(asked).toEqual([{ q: 1 }]);
    turn = chat.nextTurn();
    await chat.send("tool gps");
    expect(JSON.parse((await turn).text)).toEqual({ ok: false, error: "no fix" });
  });

  test("sessions API helpers and media upload", async () => {
    const gw = await startTestGateway();
    const target = { socketPath: gw.config.unix_socket_path };
    const { api_token } = await bootstrap(target);
    const api = new GatewayApi({ ...target, apiToken: api_token });
    const client = open(target);
    const chat = await client.newChat();
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    const media = await api.uploadMedia(new Blob([png], { type: "image/png" }), "dot.png");
    expect(media).toMatchObject({ mime: "image/png", size: png.length });
    const user = chat.once("user");
    const turn = chat.nextTurn();
    await chat.send("look", { mediaIds: [media.media_id] });
    expect((await user).media_urls?.[0]?.name).toBe("dot.png");
    await turn;
    expect(await api.rename(chat.id, "Renamed")).toEqual({ key: `websocket:${chat.id}`, title: "Renamed" });
    expect((await api.listSessions()).find((s) => s.key === `websocket:${chat.id}`)?.title).toBe("Renamed");
    // The thread is read from the per-chat transcript, which may trail what clients saw (empty or 404 until written).
    const threadOrNone = () => api.thread(chat.id).catch((e: HttpError) => (e.status === 404 ? { messages: [] } : Promise.reject(e)));
    let thread = await threadOrNone();
    for (let i = 0; i < 100 && thread.messages.length < 2; i++) thread = await Bun.sleep(20).then(threadOrNone);
    expect(thread.messages.length).toBe(2);
    expect(await api.delete(chat.id)).toEqual({ deleted: true });
    expect((await api.listSessions()).length).toBe(0);
  });
});
