/**
 * One chat's conversation as the page shows it, built from the chat's events in
 * seq order (the SDK drops replayed duplicates, so a resume only appends): user
 * bubbles, each turn's streamed Markdown (re-rendered at most once per frame),
 * its reasoning collapsed, tool hints and file edits as compact lines.
 */
import type { ChatStreamEvent } from "../src/client/index.ts";
import { h } from "./dom.ts";
import { markdown, safeImage } from "./markdown.ts";

type MediaUrl = { url: string; name: string };

interface TurnView {
  el: HTMLElement;
  body: HTMLElement;
  text: string;
  reasoning?: { el: HTMLElement; text: string };
}

const STATUS_NOTE: Record<string, string> = { cancelled: "stopped", error: "failed", interrupted: "interrupted by a gateway restart" };

function mediaNodes(media: MediaUrl[] | undefined): Node[] {
  return (media ?? []).flatMap((m) => {
    const src = safeImage(m.url);
    return src ? [h("img", { src, alt: m.name, class: "attached", loading: "lazy" })] : [];
  });
}

export class ThreadView {
  readonly #turns = new Map<string, TurnView>();
  readonly #dirty = new Set<TurnView>();
  #frame = 0;

  constructor(readonly el: HTMLElement) {
    el.replaceChildren();
  }

  show(event: ChatStreamEvent): void {
    switch (event.event) {
      case "user":
        return this.#append(h("div", { class: "msg user" }, h("div", { class: "bubble" }, event.text, ...mediaNodes(event.media_urls))));
      case "delta":
        return this.#streamText(event.turn_id, event.text);
      case "reasoning_delta":
        return this.#reasoning(event.turn_id, event.text);
      case "message":
        return this.#message(event.turn_id, event.text, event.kind, event.media_urls);
      case "file_edit":
        return this.#note(event.turn_id, "edit", `edited ${event.edits.map((e) => String(e.path ?? e.file ?? "a file")).join(", ")}`);
      case "tool_request":
        return this.#note(event.turn_id, "tool", `${event.tool}(…)`);
      case "tool_result":
        return this.#note(event.turn_id, "tool", event.ok ? "tool done" : `tool failed: ${event.error ?? ""}`);
      case "turn_end":
        return this.#ended(event.turn_id, event.status, event.error);
      case "gap":
        return this.#append(h("div", { class: "note" }, "This chat's history was reset."));
      case "error":
        return this.error(event.reason ? `${event.detail} (${event.reason})` : event.detail);
    }
  }

  /** A refusal the person must see (a message or an upload the gateway did not take). */
  error(text: string): void {
    this.#append(h("div", { class: "note error", role: "alert" }, text));
  }

  /** The turn's element, created at its first event. */
  #turn(turnId = "?"): TurnView {
    let turn = this.#turns.get(turnId);
    if (!turn) {
      const body = h("div", { class: "md" });
      turn = { el: h("div", { class: "msg agent", "data-turn": turnId }, body), body, text: "" };
      this.#turns.set(turnId, turn);
      this.#append(turn.el);
    }
    return turn;
  }

  #streamText(turnId: string | undefined, text: string): void {
    const turn = this.#turn(turnId);
    turn.text += text;
    turn.el.classList.add("streaming");
    this.#dirty.add(turn);
    this.#frame ||= requestAnimationFrame(() => this.#render());
  }

  #render(): void {
    this.#frame = 0;
    const follow = this.#atBottom();
    for (const turn of this.#dirty) turn.body.replaceChildren(markdown(turn.text));
    this.#dirty.clear();
    if (follow) this.el.scrollTop = this.el.scrollHeight;
  }

  #reasoning(turnId: string | undefined, text: string): void {
    const turn = this.#turn(turnId);
    if (!turn.reasoning) {
      const el = h("pre");
      turn.el.insertBefore(h("details", { class: "reasoning" }, h("summary", {}, "Reasoning"), el), turn.body);
      turn.reasoning = { el, text: "" };
    }
    turn.reasoning.text += text;
    turn.reasoning.el.textContent = turn.reasoning.text;
  }

  #message(turnId: string | undefined, text: string, kind: string | undefined, media: MediaUrl[] | undefined): void {
    if (kind) return this.#note(turnId, "tool", text);
    if (turnId === undefined) return this.#append(h("div", { class: "note" }, text));
    const turn = this.#turn(turnId);
    turn.el.insertBefore(h("div", { class: "md" }, markdown(text), ...mediaNodes(media)), turn.body.nextSibling);
    this.#scroll();
  }

  #note(turnId: string | undefined, kind: string, text: string): void {
    const hint = h("div", { class: `hint ${kind}`, title: text }, text);
    if (turnId === undefined) return this.#append(hint);
    const turn = this.#turn(turnId);
    turn.el.insertBefore(hint, turn.body);
    this.#scroll();
  }

  #ended(turnId: string | undefined, status: string, error: string | undefined): void {
    const turn = this.#turn(turnId);
    turn.el.classList.remove("streaming");
    turn.el.dataset.status = status;
    const note = STATUS_NOTE[status];
    if (note) turn.el.append(h("div", { class: "note" }, error ? `${note}: ${error}` : note));
  }

  #append(node: HTMLElement): void {
    const follow = this.#atBottom();
    this.el.append(node);
    if (follow) this.el.scrollTop = this.el.scrollHeight;
  }

  #scroll(): void {
    if (this.#atBottom()) this.el.scrollTop = this.el.scrollHeight;
  }

  #atBottom(): boolean {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < 80;
  }
}
