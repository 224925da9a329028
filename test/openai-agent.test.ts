import { describe, expect, test } from "bun:test";
import { type Frame, onCleanup, sendTurn, startTestGateway, TestClient } from "./helpers.ts";

interface Seen {
  authorization: string | null;
  body: { model: string; stream: boolean; messages: { role: string; content: string }[] };
}

/** An OpenAI-compatible server speaking real SSE, scripted by the last user message. */
function fakeLLM(): { url: string; seen: Seen[] } {
  const seen: Seen[] = [];
  const sse = (chunks: (object | string)[]) =>
    new Response(chunks.map((c) => `data: ${typeof c === "string" ? c : JSON.stringify(c)}\n\n`).join(""), { headers: { "content-type": "text/event-stream" } });
  const delta = (d: object) => ({ choices: [{ index: 0, delta: d }] });
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as Seen["body"];
      seen.push({ authorization: req.headers.get("authorization"), body });
      const last = body.messages.at(-1)!.content;
      if (last === "fail") return new Response("boom", { status: 500 });
      if (last === "midstream") return sse([delta({ content: "partial" }), { error: { message: "overloaded" } }]);
      return sse([
        delta({ role: "assistant", reasoning_content: "Let me " }),
        delta({ reasoning_content: "think." }),
        delta({ content: "Hello" }),
        delta({ content: " there" }),
        delta({ tool_calls: [{ index: 0, id: "call_1", function: { name: "search", arguments: '{"q":' } }] }),
        delta({ tool_calls: [{ index: 0, function: { arguments: '"x"}' } }] }),
        { choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] },
        "[DONE]",
      ]);
    },
  });
  onCleanup(() => server.stop(true));
  return { url: `http://127.0.0.1:${server.port}/v1`, seen };
}

async function gatewayWithLLM() {
  const llm = fakeLLM();
  process.env.AGENTGATE_TEST_LLM_KEY = "sk-test";
  const gw = await startTestGateway({
    agent: "llm",
    agents: { llm: { type: "openai", base_url: llm.url, model: "tiny-1", api_key_env: "AGENTGATE_TEST_LLM_KEY", system_prompt: "Be brief." } },
  });
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
  return { llm, client, chatId: ready.chat_id as string };
}

const events = (frames: Frame[]) => frames.map((f) => f.event);

describe("OpenAI-compatible agent", () => {
  test("streams reasoning, content and tool calls; sends model, key and history", async () => {
    const { llm, client, chatId } = await gatewayWithLLM();
    const first = await sendTurn(client, chatId, "hi");
    expect(events(first)).toEqual([
      "user", "goal_status", "reasoning_delta", "reasoning_delta", "reasoning_end", "delta", "delta", "stream_end", "message", "turn_end", "goal_status",
    ]);
    expect(first.filter((f) => f.event === "reasoning_delta").map((f) => f.text).join("")).toBe("Let me think.");
    expect(first.filter((f) => f.event === "delta").map((f) => f.text).join("")).toBe("Hello there");
    expect(first[8]).toMatchObject({ kind: "tool_hint", text: 'search({"q":"x"})', tool_events: [{ phase: "start", call_id: "call_1", name: "search", arguments: '{"q":"x"}' }] });
    expect(llm.seen[0]).toEqual({
      authorization: "Bearer sk-test",
      body: { model: "tiny-1", stream: true, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }] },
    });
    await sendTurn(client, chatId, "and again");
    expect(llm.seen[1]!.body.messages.slice(1)).toEqual([
      { role: "user", content: "hi" },
      { role: "assistant", content: "Hello there" },
      { role: "user", content: "and again" },
    ]);
  });

  test("a mid-stream error keeps the partial text and ends the turn with error", async () => {
    const { client, chatId } = await gatewayWithLLM();
    const frames = await sendTurn(client, chatId, "midstream");
    expect(frames.find((f) => f.event === "delta")?.text).toBe("partial");
    expect(frames.find((f) => f.event === "message")?.text).toBe("Error: overloaded");
    expect(frames.find((f) => f.event === "turn_end")).toMatchObject({ status: "error", error: "overloaded" });
  });

  test("an HTTP 500 becomes an error message and turn_end error", async () => {
    const { client, chatId } = await gatewayWithLLM();
    const frames = await sendTurn(client, chatId, "fail");
    expect(events(frames)).toEqual(["user", "goal_status", "message", "turn_end", "goal_status"]);
    expect(frames[2]!.text).toBe("Error: HTTP 500: boom");
    expect(frames[3]).toMatchObject({ status: "error", error: "HTTP 500: boom" });
  });
});
