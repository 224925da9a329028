/**
 * The conversation an LLM agent is given: the chat's events through a seq, read
 * through the chat reader and folded into user and assistant turns.
 */
import type { LlmMessage } from "./agents/openai.ts";
import type { ChatReader } from "./chat/reader.ts";
import { foldThread } from "./chat/thread.ts";

/** The chat as a conversation (user and assistant turns) through `throughSeq`, for an LLM agent. */
export async function conversation(reader: ChatReader, chatId: string, throughSeq: number): Promise<LlmMessage[]> {
  const events = [];
  for await (const line of reader.read(chatId, { through: throughSeq })) events.push(JSON.parse(line));
  return foldThread(events).flatMap((m) => (m.role !== "tool" && m.content !== "" ? [{ role: m.role, content: m.content }] : []));
}
