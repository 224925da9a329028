/**
 * Start-up recovery: turns the previous process left `running` (it crashed or
 * was killed) are closed in their chats (in a cluster, also a turn whose writer
 * died, by the node taking the chat over), so a client that attaches sees the turn
 * finished instead of a spinner that never stops (nanobot issue #4500).
 */
import type { Hub } from "../chat/hub.ts";
import type { Logger } from "../log.ts";
import type { ChatStore } from "../store/chat-store.ts";

/** Ends a turn whose runner is gone, in its chat, as every client expects a turn to end. */
export function publishInterrupted(hub: Hub, chat_id: string, turn_id: string): void {
  hub.publish({ event: "turn_end", chat_id, goal_state: { active: false }, status: "interrupted", turn_id });
  hub.publish({ event: "goal_status", chat_id, status: "idle", turn_id });
}

export function closeInterruptedTurns(store: ChatStore, hub: Hub, log: Logger): number {
  const turns = store.runningTurns();
  for (const turn of turns) {
    publishInterrupted(hub, turn.chatId, turn.id);
    store.turnEnded(turn.id, "interrupted", Date.now() - turn.startedAt.getTime(), "the gateway stopped while the turn ran");
  }
  if (turns.length > 0) log.warn("closed turns interrupted by the previous shutdown", { count: turns.length });
  return turns.length;
}
