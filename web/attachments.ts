/**
 * Images to send with the next message: picked, pasted or dropped, previewed
 * from a local blob: URL, uploaded through POST /api/media when the message is
 * sent (the gateway checks type and size), then referenced by media_id.
 */
import type { GatewayApi } from "../src/client/index.ts";
import { byId, h } from "./dom.ts";

export class Attachments {
  readonly #files = new Map<File, HTMLElement>();

  constructor(
    readonly tray: HTMLElement,
    readonly api: () => GatewayApi,
  ) {
    const picker = byId<HTMLInputElement>("file");
    picker.addEventListener("change", () => {
      this.add(picker.files);
      picker.value = "";
    });
    document.addEventListener("paste", (e) => this.add(e.clipboardData?.files));
    document.addEventListener("dragover", (e) => e.preventDefault());
    document.addEventListener("drop", (e) => {
      e.preventDefault();
      this.add(e.dataTransfer?.files);
    });
  }

  get empty(): boolean {
    return this.#files.size === 0;
  }

  add(files: FileList | null | undefined): void {
    for (const file of files ?? []) {
      if (!file.type.startsWith("image/")) continue;
      const url = URL.createObjectURL(file);
      const remove = h("button", { type: "button", class: "icon", title: "Remove", "aria-label": "Remove" }, "✕");
      const chip = h("span", { class: "chip" }, h("img", { src: url, alt: file.name }), remove);
      remove.addEventListener("click", () => this.#drop(file));
      this.#files.set(file, chip);
      this.tray.append(chip);
    }
  }

  /** Uploads every attached image; returns their media ids and clears the tray. */
  async upload(): Promise<string[]> {
    const files = [...this.#files.keys()];
    const uploaded = await Promise.all(files.map((f) => this.api().uploadMedia(f, f.name)));
    for (const f of files) this.#drop(f);
    return uploaded.map((u) => u.media_id);
  }

  #drop(file: File): void {
    const chip = this.#files.get(file);
    const img = chip?.querySelector("img");
    if (img) URL.revokeObjectURL(img.src);
    chip?.remove();
    this.#files.delete(file);
  }
}
