/**
 * docs/grafana-dashboard.json stays in step with /metrics: every query names
 * only series agentgate exposes, and every family has a panel.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { metricNames } from "../src/metrics/metrics.ts";
import { REPO_ROOT } from "./helpers.ts";

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { refId: string; expr: string }[];
}

const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, "docs/grafana-dashboard.json"), "utf8")) as { title: string; uid: string; panels: Panel[] };
/** A histogram's samples carry _bucket, _sum and _count after the family name. */
const family = (series: string) => series.replace(/_(bucket|sum|count)$/, "");

test("every dashboard query references existing metrics, and every metric family has a panel", () => {
  const names = new Set(metricNames());
  const used = new Set<string>();
  const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
  expect(exprs.length).toBeGreaterThan(0);
  for (const expr of exprs) {
    const series = expr.match(/agentgate_[a-z_]+/g) ?? [];
    expect(series.length).toBeGreaterThan(0);
    for (const s of series) {
      const name = names.has(s) ? s : family(s);
      expect(names.has(name), `${expr} names ${s}`).toBe(true);
      used.add(name);
    }
  }
  expect([...names].filter((n) => !used.has(n))).toEqual([]);
});

test("the dashboard is importable: a title, a uid, unique panel ids, a grid position and refIds per target", () => {
  expect(dashboard.title).toBe("agentgate");
  expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
  const ids = dashboard.panels.map((p) => p.id);
  expect(new Set(ids).size).toBe(ids.length);
  for (const p of dashboard.panels) {
    expect(p.gridPos.w).toBeGreaterThan(0);
    expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    if (p.type !== "row") expect(p.targets?.map((t) => t.refId)).toEqual(p.targets?.map((_, i) => String.fromCharCode(65 + i)));
  }
});
