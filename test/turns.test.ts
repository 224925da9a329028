import { describe, expect, test } from "bun:test";
import { type Frame, isTurnEnd, startTestGateway, TestClient, TRANSPORTS } from "./helpers.ts";
import { moved, scrape } from "./metrics-scrape.ts";
import { chatServedByRemote, remoteAgentConfig } from "./remote-agent.ts";

const texts = (frames: Frame[], event = "delta") => frames.filter((f) => f.event === event).map((f) => f.text);

for (const transport of TRANSPORTS) {
  describe(`echo turns over ${transport}`, () => {
    test("a streamed turn: user → goal_status running → delta × N → stream_end → turn_end → goal_status idle", async () => {
      const gw = await startTestGateway({ echo_chunk_size: 4 });
      const { client, ready } = await TestClient.ready(gw.wsUrl(transport));
      const before = Date.now() / 1000;
      client.send({ type: "message", chat_id: ready.chat_id, content: "hello world" });
      const frames = await client.until(isTurnEnd);
      expect(frames.map((f) => f.event)).toEqual(["user", "goal_status", "delta", "delta", "delta", "stream_end", "turn_end", "goal_status"]);
      const [user, running, , , , end, turnEnd, idle] = frames as Frame[];
      expect(user).toEqual({ event: "user", chat_id: ready.chat_id, text: "hello world", client_id: ready.client_id, seq: 1 });
      expect(running).toMatchObject({ status: "running", chat_id: ready.chat_id });
      expect(running!.started_at).toBeGreaterThanOrEqual(Math.floor(before));
      expect(texts(frames)).toEqual(["hell", "o wo", "rld"]);
      expect(end).not.toHaveProperty("text");
      expect(new Set(frames.slice(2, 6).map((f) => f.stream_id)).size).toBe(1);
      expect(turnEnd).toMatchObject({ status: "done", goal_state: { active: false }, latency_ms: expect.any(Number) });
      expect(idle).toMatchObject({ status: "idle" });
      expect(idle).not.toHaveProperty("started_at");
      expect(frames.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(new Set(frames.slice(1).map((f) => f.turn_id)).size).toBe(1);
      await client.expectQuiet();
    });

    test("seq continues across turns of a chat", async () => {
      const gw = await startTestGateway({ echo_chunk_size: 100 });
      const { client, ready } = await TestClient.ready(gw.wsUrl(transport));
      client.send({ type: "message", chat_id: ready.chat_id, content: "one" });
      await client.until(isTurnEnd);
      client.send({ type: "message", chat_id: ready.chat_id, content: "two" });
      const second = await client.until(isTurnEnd);
      expect(second.map((f) => f.seq)).toEqual([7, 8, 9, 10, 11, 12]);
    });

    test("with streaming off a turn is one message with latency_ms", async () => {
      const gw = await startTestGateway({ streaming: false, echo_chunk_size: 2 });
      const { client, ready } = await TestClient.ready(gw.wsUrl(transport));
      client.send({ type: "message", chat_id: ready.chat_id, content: "not streamed" });
      const frames = await client.until(isTurnEnd);
      expect(frames.map((f) => f.event)).toEqual(["user", "goal_status", "message", "turn_end", "goal_status"]);
      expect(frames[2]).toMatchObject({ text: "not streamed", latency_ms: expect.any(Number) });
    });

    test("/stop ends the running turn early as cancelled and keeps the partial text", async () => {
      const gw = await startTestGateway({ echo_chunk_size: 1, echo_delay_ms: 5 });
      const { client, ready } = await TestClient.ready(gw.wsUrl(transport));
      client.send({ type: "message", chat_id: ready.chat_id, content: "x".repeat(2000) });
      await client.until((f) => f.event === "delta");
      client.send({ content: "/stop" });
      const frames = await client.until(isTurnEnd);
      expect(frames.find((f) => f.event === "message")?.text).toBe("Stopped 1 task(s).");
      expect(frames.find((f) => f.event === "turn_end")?.status).toBe("cancelled");
      expect(texts(frames).length).toBeLessThan(1999);
      client.send({ type: "stop", chat_id: ready.chat_id });
      expect((await client.next()).text).toBe("No active task to stop.");
    });

    test("messages queue behind the running turn up to max_queued_turns, then chat_busy", async () => {
      const gw = await startTestGateway({ echo_chunk_size: 1, echo_delay_ms: 2, max_queued_turns: 1 });
      const { client, ready } = await TestClient.ready(gw.wsUrl(transport));
      const chat_id = ready.chat_id;
      client.send({ type: "message", chat_id, content: "first" });
      client.send({ type: "message", chat_id, content: "second" });
      client.send({ type: "message", chat_id, content: "third" });
      const first = await client.until(isTurnEnd);
      expect(first.find((f) => f.event === "error")).toEqual({ event: "error", detail: "chat_busy", chat_id });
      expect(texts(first).join("")).toBe("first");
      expect(texts(await client.until(isTurnEnd)).join("")).toBe("second");
      await client.expectQuiet();
    });

    test("a client attaching mid-turn is told the turn is running; a disconnect does not cancel it", async () => {
      const gw = await startTestGateway({ echo_chunk_size: 1, echo_delay_ms: 2 });
      const a = await TestClient.ready(gw.wsUrl(transport));
      const chat_id = a.ready.chat_id;
      a.client.send({ type: "message", chat_id, content: "abcdefghijklmnopqrstuvwxyz" });
      const [, running] = await a.client.until((f) => f.event === "delta");
      a.client.ws.close();
      const b = await TestClient.ready(gw.wsUrl(transport));
      b.client.send({ type: "attach", chat_id });
      expect((await b.client.next()).event).toBe("attached");
      expect(await b.client.next()).toEqual({ event: "goal_status", chat_id, status: "running", started_at: running!.started_at, turn_id: running!.turn_id });
      const rest = await b.client.until(isTurnEnd);
      expect(rest.find((f) => f.event === "turn_end")?.status).toBe("done");
    });
  });
}

test("subscribers on TCP and on the unix socket share one chat stream", async () => {
  const gw = await startTestGateway({ echo_chunk_size: 3 });
  const tcp = await TestClient.ready(gw.wsUrl("tcp"));
  const unix = await TestClient.ready(gw.wsUrl("unix"));
  unix.client.send({ type: "attach", chat_id: tcp.ready.chat_id });
  expect((await unix.client.next()).event).toBe("attached");
  tcp.client.send({ type: "message", chat_id: tcp.ready.chat_id, content: "across listeners" });
  const viaTcp = await tcp.client.until(isTurnEnd);
  const viaUnix = await unix.client.until(isTurnEnd);
  expect(viaUnix).toEqual(viaTcp);
  expect(texts(viaUnix).join("")).toBe("across listeners");
});

test("chats are isolated: events of one chat reach only its subscribers", async () => {
  const gw = await startTestGateway();
  const { client } = await TestClient.ready(gw.wsUrl("tcp"));
  client.send({ type: "new_chat" });
  const a = (await client.until((f) => f.event === "session_updated"))[0]!.chat_id;
  const other = await TestClient.ready(gw.wsUrl("unix"));
  client.send({ type: "message", chat_id: a, content: "only a" });
  expect((await client.until(isTurnEnd)).every((f) => f.chat_id === a)).toBe(true);
  await other.client.expectQuiet();
});

test("runtime_model_updated reaches every open connection on every listener", async () => {
  const gw = await startTestGateway();
  const clients = [await TestClient.ready(gw.wsUrl("tcp")), await TestClient.ready(gw.wsUrl("unix"))];
  gw.announceModel("  ", "ignored");
  gw.announceModel(" openai/gpt-4.1 ", "fast");
  for (const { client } of clients) {
    expect(await client.next()).toEqual({ event: "runtime_model_updated", model_name: "openai/gpt-4.1", model_preset: "fast" });
  }
});

test("a turn's stats count the agent's stream, not the gateway's error message: no first token when the agent said nothing", async () => {
  const gw = await startTestGateway(remoteAgentConfig());
  const { client, chatId } = await chatServedByRemote(gw);
  const before = await scrape(gw);
  client.send({ type: "message", chat_id: chatId, content: "nobody is connected to answer" });
  const frames = await client.until(isTurnEnd);
  expect(frames.find((f) => f.event === "message")?.text).toStartWith("Error: ");
  expect(frames.find((f) => f.event === "turn_end")).toMatchObject({ status: "error" });
  const after = await scrape(gw);
  expect(moved(before, after, 'agentgate_turns_total{agent="remote",status="error"}')).toBe(1);
  expect(moved(before, after, 'agentgate_turn_time_to_first_token_seconds_count{agent="remote"}')).toBe(0);
  expect(moved(before, after, 'agentgate_deltas_total{agent="remote"}')).toBe(0);
});
