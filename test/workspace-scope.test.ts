/**
 * When a chat's workspace scope may change: not while a turn runs, unless a
 * message repeats the scope the chat already has (reference §3.2, "chat_running").
 */
import { expect, test } from "bun:test";
import { type Frame, startTestGateway, stdioAgentConfig, TestClient } from "./helpers.ts";

const isError = (f: Frame) => f.event === "error";

test("while a turn runs: set_workspace_scope and a message with another scope are refused; the same scope is accepted", async () => {
  const gw = await startTestGateway(stdioAgentConfig({ agent_cancel_grace_ms: 10_000 }));
  const { client, ready } = await TestClient.ready(gw.wsUrl("tcp"));
  const chat_id = ready.chat_id;
  const restricted = { project_path: gw.dir };
  client.send({ type: "set_workspace_scope", chat_id, workspace_scope: restricted });
  expect((await client.until((f) => f.event === "session_updated")).at(-1)!.workspace_scope).toMatchObject({ access_mode: "restricted" });

  client.send({ type: "message", chat_id, content: "slow" });
  await client.until((f) => f.event === "delta");
  client.send({ type: "set_workspace_scope", chat_id, workspace_scope: { project_path: gw.dir, access_mode: "full" } });
  expect((await client.until(isError)).at(-1)).toEqual({ event: "error", detail: "workspace_scope_rejected", reason: "chat_running", chat_id });
  client.send({ type: "message", chat_id, content: "other", workspace_scope: { project_path: gw.dir, access_mode: "full" } });
  expect((await client.until(isError)).at(-1)).toEqual({ event: "error", detail: "workspace_scope_rejected", reason: "chat_running", chat_id });
  client.send({ type: "message", chat_id, content: "same", workspace_scope: restricted });
  const accepted = await client.until((f) => f.event === "user" || isError(f));
  expect(accepted.at(-1)).toMatchObject({ event: "user", text: "same", chat_id });

  client.send({ type: "stop", chat_id });
  const rest = await client.until((f) => f.event === "goal_status" && f.status === "idle");
  expect(rest.find((f) => f.event === "turn_end")?.status).toBe("cancelled");
});

test("a scope given with new_chat is the chat's scope: stored, listed and handed to the agent", async () => {
  const gw = await startTestGateway(stdioAgentConfig());
  const { client } = await TestClient.ready(gw.wsUrl("tcp"));
  client.send({ type: "new_chat", workspace_scope: { project_path: gw.dir, access_mode: "full" } });
  const chat_id = (await client.until((f) => f.event === "attached")).at(-1)!.chat_id as string;
  await client.until((f) => f.event === "session_updated");
  const boot = (await (await gw.http("tcp", "/webui/bootstrap")).json()) as { api_token: string };
  const { sessions } = (await (await gw.http("tcp", "/api/sessions", { headers: { authorization: `Bearer ${boot.api_token}` } })).json()) as { sessions: Frame[] };
  expect(sessions.find((s) => s.key === `websocket:${chat_id}`)?.workspace_scope).toEqual({ project_path: gw.dir, access_mode: "full" });
  // A later message with the same scope while a turn runs is accepted: the chat already has it.
  client.send({ type: "message", chat_id, content: "slow" });
  await client.until((f) => f.event === "delta");
  client.send({ type: "message", chat_id, content: "same", workspace_scope: { project_path: gw.dir, access_mode: "full" } });
  expect((await client.until((f) => f.event === "user" || isError(f))).at(-1)).toMatchObject({ event: "user", text: "same" });
  client.send({ type: "stop", chat_id });
  await client.until((f) => f.event === "goal_status" && f.status === "idle");
});
