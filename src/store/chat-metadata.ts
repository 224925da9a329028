/**
 * Per-chat metadata (workspace scope, goal state, title). In memory for now;
 * the durable-chats work moves it into SQLite behind this same interface.
 */
export type ChatMetadata = Record<string, unknown>;

export interface ChatMetadataStore {
  get(chatId: string): ChatMetadata | undefined;
  merge(chatId: string, patch: ChatMetadata): void;
}

export class MemoryChatMetadata implements ChatMetadataStore {
  readonly #byChat = new Map<string, ChatMetadata>();

  get(chatId: string): ChatMetadata | undefined {
    return this.#byChat.get(chatId);
  }

  merge(chatId: string, patch: ChatMetadata): void {
    this.#byChat.set(chatId, { ...this.#byChat.get(chatId), ...patch });
  }
}
