/**
 * A bounded memory of recently seen ids (oldest forgotten first), so a resent
 * message is acknowledged instead of run twice without memory growing forever.
 */
export class RecentIds {
  readonly #ids = new Set<string>();

  constructor(private readonly capacity: number) {}

  /** True if the id was seen recently; otherwise remembers it and returns false. */
  seen(id: string): boolean {
    if (this.#ids.has(id)) return true;
    if (this.capacity === 0) return false;
    if (this.#ids.size >= this.capacity) this.#ids.delete(this.#ids.values().next().value!);
    this.#ids.add(id);
    return false;
  }
}
