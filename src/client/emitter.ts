/** Typed callbacks and async iteration over one stream of events. */
type Listener<T> = (event: T) => void;

export class Emitter<T extends { event: string }> {
  readonly #listeners = new Set<Listener<T>>();

  /** Calls `fn` for every event, or only for events named `name`; returns an unsubscribe function. */
  on<N extends T["event"]>(name: N | "*", fn: (event: Extract<T, { event: N }>) => void): () => void {
    const listener: Listener<T> = (e) => {
      if (name === "*" || e.event === name) fn(e as Extract<T, { event: N }>);
    };
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The next event named `name`. */
  once<N extends T["event"]>(name: N): Promise<Extract<T, { event: N }>> {
    return new Promise((resolve) => {
      const off = this.on(name, (e) => {
        off();
        resolve(e);
      });
    });
  }

  emit(event: T): void {
    for (const fn of [...this.#listeners]) fn(event);
  }

  /** Every event from now on, as an async iterator; ends when the loop breaks. */
  async *events(): AsyncGenerator<T> {
    const queue: T[] = [];
    let wake: (() => void) | undefined;
    const off = this.on("*", (e) => {
      queue.push(e);
      wake?.();
    });
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      off();
    }
  }
}
