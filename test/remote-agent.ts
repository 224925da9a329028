/**
 * A WebSocket agent played by the test process: it connects over the gateway's
 * unix socket with the agent credential, says hello and records every frame the
 * gateway sends it. Shared by the tests that need an agent they fully control.
 */
import { join } from "node:path";
import { type Frame, onCleanup, TestClient, type TestGateway } from "./helpers.ts";

export const AGENT_TOKEN = "agent-secret";

export class RemoteAgent {
  readonly received: Frame[] = [];
  #wake: (() => void) | undefined;
  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      this.received.push(JSON.parse(String(e.data)));
      this.#wake?.();
    });
  }

  static async connect(gw: TestGateway, name = "remote"): Promise<RemoteAgent> {
    const ws = new WebSocket(`ws+unix://${join(gw.dir, "gw.sock")}:/agent?token=${AGENT_TOKEN}`);
    onCleanup(() => ws.close());
    await new Promise((resolve, reject) => {
      ws.addEventListener("open", resolve);
      ws.addEventListener("error", reject);
    });
    ws.send(JSON.stringify({ type: "hello", agent: name, protocol: 1 }));
    return new RemoteAgent(ws);
  }

  send(frame: object) {
    this.ws.send(JSON.stringify(frame));
  }

  /** The first received frame of this type (removed from `received`), waiting up to `timeoutMs`. */
  async next(type: string, timeoutMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const i = this.received.findIndex((f) => f.type === type);
      if (i !== -1) return this.received.splice(i, 1)[0]!;
      await new Promise<void>((r) => {
        this.#wake = r;
        setTimeout(r, 100);
      });
    }
    throw new Error(`timed out waiting for a ${type} frame from the gateway`);
  }
}

/** Gateway config with one ws agent named "remote" (extra options override). */
export const remoteAgentConfig = (extra = {}) => ({
  agents: { remote: { type: "ws" as const } },
  agent_token: AGENT_TOKEN,
  agent_reconnect_grace_ms: 300,
  ...extra,
});

/** A client with a new chat served by the "remote" agent. */
export async function chatServedByRemote(gw: TestGateway) {
  const { client } = await TestClient.ready(gw.wsUrl("tcp"));
  client.send({ type: "new_chat", agent: "remote" });
  const attached = await client.next();
  await client.next();
  return { client, chatId: attached.chat_id as string };
}
