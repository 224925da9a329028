/** Test clients of a cluster's gateways. */
import { TestClient } from "../helpers.ts";

/** A client of the gateway at `url` attached to `chatId` (resuming after `sinceSeq` when given), once the gateway said so. */
export async function attachedClient(url: string, chatId: string, sinceSeq?: number): Promise<TestClient> {
  const { client } = await TestClient.ready(url);
  client.send({ type: "attach", chat_id: chatId, ...(sinceSeq !== undefined && { since_seq: sinceSeq }) });
  await client.until((f) => f.event === "attached" && f.chat_id === chatId);
  return client;
}
