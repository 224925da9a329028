/**
 * The sessions sidebar: the gateway's chats newest first (GET /api/sessions),
 * each opened by a click, renamed in place (Enter saves, Escape cancels) or
 * deleted after a confirm. The open chat is marked.
 */
import type { GatewayApi, SessionRow } from "../src/client/index.ts";
import { h } from "./dom.ts";

export interface SidebarActions {
  open(chatId: string): void;
  deleted(chatId: string): void;
}

const chatIdOf = (row: SessionRow) => row.key.replace(/^websocket:/, "");
const label = (row: SessionRow) => row.title || row.preview || "New chat";

export class Sidebar {
  current: string | undefined;

  constructor(
    readonly list: HTMLElement,
    readonly api: () => GatewayApi,
    readonly actions: SidebarActions,
  ) {}

  async refresh(): Promise<void> {
    const rows = await this.api().listSessions();
    rows.sort((a, b) => b.updated_at.localeCompare(a.updated_at));
    this.list.replaceChildren(...rows.filter((r) => r.key.startsWith("websocket:")).map((r) => this.#item(r)));
  }

  select(chatId: string | undefined): void {
    this.current = chatId;
    for (const li of this.list.children) li.classList.toggle("active", (li as HTMLElement).dataset.chat === chatId);
  }

  #item(row: SessionRow): HTMLElement {
    const id = chatIdOf(row);
    const open = h("button", { class: "open", type: "button", title: label(row) }, label(row));
    const rename = h("button", { class: "icon", type: "button", title: "Rename", "aria-label": "Rename" }, "✎");
    const remove = h("button", { class: "icon", type: "button", title: "Delete", "aria-label": "Delete" }, "✕");
    const li = h("li", { "data-chat": id, ...(id === this.current && { class: "active" }) }, open, rename, remove);
    open.addEventListener("click", () => this.actions.open(id));
    rename.addEventListener("click", () => this.#rename(li, open, id));
    remove.addEventListener("click", async () => {
      if (!confirm(`Delete “${label(row)}”?`)) return;
      await this.api().delete(id);
      this.actions.deleted(id);
      await this.refresh();
    });
    return li;
  }

  #rename(li: HTMLElement, open: HTMLElement, id: string): void {
    const input = h("input", { class: "rename", value: open.textContent ?? "", "aria-label": "New title" });
    open.replaceWith(input);
    input.focus();
    input.select();
    input.addEventListener("keydown", async (e) => {
      if (e.key === "Escape") return input.replaceWith(open);
      if (e.key !== "Enter" || input.value.trim() === "") return;
      e.preventDefault();
      await this.api().rename(id, input.value.trim());
      await this.refresh();
    });
    input.addEventListener("blur", () => li.contains(input) && input.replaceWith(open));
  }
}
