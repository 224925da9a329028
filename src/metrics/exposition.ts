/**
 * A small Prometheus text-format (0.0.4) writer. prom-client runs under Bun, but
 * its label children hash and validate the label object on every `inc` (about
 * 250 ns each, measured): too much for a path that runs per event. Here a child
 * is a plain object bound once to its label values; the hot path adds to a
 * number field, and label text is built only when /metrics is scraped.
 */

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type LabelValues = readonly string[];

/** Label values are escaped as the format requires: backslash, double quote, newline. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labelText(names: readonly string[], values: LabelValues, extra?: string): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? "")}"`);
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** Numbers as the format spells them (+Inf, -Inf, NaN). */
function num(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

export interface Family {
  readonly name: string;
  render(): string;
}

/** Children by label values, created once and kept: callers hold them, the hot path never looks one up. */
abstract class Labelled<C> implements Family {
  readonly #children = new Map<string, { values: LabelValues; child: C }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge" | "histogram",
    readonly labelNames: readonly string[],
  ) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`invalid metric name: ${name}`);
  }

  protected abstract create(): C;
  protected abstract samples(values: LabelValues, child: C): string[];

  /** The child for these label values (one per distinct set, for the process's life). */
  labels(...values: string[]): C {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name} takes ${this.labelNames.length} label values`);
    const key = values.join("\u0000");
    let entry = this.#children.get(key);
    if (!entry) {
      entry = { values, child: this.create() };
      this.#children.set(key, entry);
    }
    return entry.child;
  }

  render(): string {
    const head = `# HELP ${this.name} ${this.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n# TYPE ${this.name} ${this.type}\n`;
    const lines: string[] = [];
    for (const { values, child } of this.#children.values()) lines.push(...this.samples(values, child));
    return head + lines.map((l) => `${l}\n`).join("");
  }
}

/** A family whose children each hold one number: one sample line per child. */
abstract class SingleValued<C extends { value: number }> extends Labelled<C> {
  protected samples(values: LabelValues, child: C): string[] {
    return [`${this.name}${labelText(this.labelNames, values)} ${num(child.value)}`];
  }
}

/** A monotonically growing count: `value` is a plain number the hot path adds to. */
export class CounterChild {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

export class Counter extends SingleValued<CounterChild> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, "counter", labelNames);
  }
  protected create(): CounterChild {
    return new CounterChild();
  }
}

/** A value that goes up and down, set by its owner (at scrape time, for agentgate's gauges). */
export class GaugeChild {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
}

export class Gauge extends SingleValued<GaugeChild> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, "gauge", labelNames);
  }
  protected create(): GaugeChild {
    return new GaugeChild();
  }
}

/** Observations counted into fixed upper bounds (non-cumulative here; cumulated when rendered). */
export class HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (v <= bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

export class Histogram extends Labelled<HistogramChild> {
  readonly bounds: readonly number[];
  constructor(name: string, help: string, bounds: readonly number[], labelNames: readonly string[] = []) {
    super(name, help, "histogram", labelNames);
    if (bounds.length === 0 || bounds.some((b, i) => i > 0 && b <= bounds[i - 1]!)) throw new Error(`${name}: buckets must be increasing`);
    this.bounds = bounds;
  }
  protected create(): HistogramChild {
    return new HistogramChild(this.bounds);
  }
  protected samples(values: LabelValues, child: HistogramChild): string[] {
    const lines: string[] = [];
    let cumulative = 0;
    child.bounds.forEach((b, i) => {
      cumulative += child.counts[i]!;
      lines.push(`${this.name}_bucket${labelText(this.labelNames, values, `le="${num(b)}"`)} ${cumulative}`);
    });
    lines.push(`${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${child.count}`);
    lines.push(`${this.name}_sum${labelText(this.labelNames, values)} ${num(child.sum)}`);
    lines.push(`${this.name}_count${labelText(this.labelNames, values)} ${child.count}`);
    return lines;
  }
}

/** Every family, rendered in registration order. */
export class Registry {
  readonly #families: Family[] = [];

  register<F extends Family>(family: F): F {
    if (this.#families.some((f) => f.name === family.name)) throw new Error(`metric registered twice: ${family.name}`);
    this.#families.push(family);
    return family;
  }

  names(): string[] {
    return this.#families.map((f) => f.name);
  }

  render(): string {
    return this.#families.map((f) => f.render()).join("");
  }
}
