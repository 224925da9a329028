/**
 * The agent a new chat is served by: a select beside the composer, offered only
 * while no chat is open (a chat keeps the agent it was created with) and only
 * when the gateway has more than one agent (bootstrap's `agents`, `default_agent`).
 */
import type { NewChatOptions } from "../src/client/index.ts";
import { h } from "./dom.ts";

export class AgentPicker {
  constructor(readonly select: HTMLSelectElement) {}

  fill(names: string[] = [], defaultAgent?: string): void {
    this.select.replaceChildren(...names.map((name) => h("option", { value: name, ...(name === defaultAgent && { selected: "" }) }, name)));
  }

  /** Shows the select when a new chat is about to be created and there is a choice to make. */
  offer(newChat: boolean): void {
    this.select.hidden = !newChat || this.select.options.length < 2;
  }

  /** The options for client.newChat(): the chosen agent, or none (the gateway's default). */
  chosen(): NewChatOptions {
    return this.select.options.length > 1 ? { agent: this.select.value } : {};
  }
}
