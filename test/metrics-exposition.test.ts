/**
 * The Prometheus text format writer (src/metrics/exposition.ts): HELP/TYPE
 * headers, label escaping, cumulative histogram buckets, and refusals of
 * names and label counts the format does not allow.
 */
import { expect, test } from "bun:test";
import { Counter, Gauge, Histogram, Registry } from "../src/metrics/exposition.ts";

test("counters render HELP, TYPE and one sample per bound child, with escaped label values", () => {
  const registry = new Registry();
  const c = registry.register(new Counter("x_total", "Things\nseen.", ["kind"]));
  const plain = c.labels("a");
  plain.inc();
  plain.inc(2);
  c.labels('q"uo\\te\nd').inc();
  expect(c.labels("a")).toBe(plain);
  expect(registry.render()).toBe(
    '# HELP x_total Things\\nseen.\n# TYPE x_total counter\nx_total{kind="a"} 3\nx_total{kind="q\\"uo\\\\te\\nd"} 1\n',
  );
});

test("gauges render the value last set", () => {
  const registry = new Registry();
  const g = registry.register(new Gauge("open_things", "Open things."));
  g.labels().set(4);
  g.labels().set(7);
  expect(registry.render()).toBe("# HELP open_things Open things.\n# TYPE open_things gauge\nopen_things 7\n");
  const h = new Registry().register(new Gauge("g", "g", ["l"]));
  h.labels("x").set(-1.5);
  expect(h.render()).toContain('g{l="x"} -1.5\n');
});

test("histograms render cumulative buckets, +Inf, sum and count", () => {
  const h = new Histogram("lat_seconds", "Latency.", [0.1, 1], ["route"]);
  const child = h.labels("r");
  for (const v of [0.05, 0.1, 0.5, 3]) child.observe(v);
  expect(h.render()).toBe(
    [
      "# HELP lat_seconds Latency.",
      "# TYPE lat_seconds histogram",
      'lat_seconds_bucket{route="r",le="0.1"} 2',
      'lat_seconds_bucket{route="r",le="1"} 3',
      'lat_seconds_bucket{route="r",le="+Inf"} 4',
      'lat_seconds_sum{route="r"} 3.65',
      'lat_seconds_count{route="r"} 4',
      "",
    ].join("\n"),
  );
});

test("invalid names, wrong label counts, unordered buckets and duplicate families are refused", () => {
  expect(() => new Counter("bad-name", "x")).toThrow("invalid metric name");
  expect(() => new Counter("ok_total", "x", ["a"]).labels()).toThrow("takes 1 label values");
  expect(() => new Histogram("h", "x", [1, 1])).toThrow("buckets must be increasing");
  const registry = new Registry();
  registry.register(new Counter("dup_total", "x"));
  expect(() => registry.register(new Counter("dup_total", "x"))).toThrow("registered twice");
});
