/**
 * Reading /metrics in tests: samples by series text, and how far a series moved
 * between two scrapes (counters are process-wide, so tests compare deltas).
 */
import { expect } from "bun:test";
import type { TestGateway, Transport } from "./helpers.ts";

export type Samples = Map<string, number>;

/** Samples by their series text (`name{labels}`); comments skipped. */
export function samples(text: string): Samples {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** GET /metrics (200 expected) from a gateway in this process, or from one at `unix` socket path in another. */
export async function scrape(gw: TestGateway | { unix: string }, transport: Transport = "tcp"): Promise<Samples> {
  const res = "unix" in gw ? await fetch("http://localhost/metrics", { unix: gw.unix }) : await gw.http(transport, "/metrics");
  expect(res.status).toBe(200);
  return samples(await res.text());
}

export const moved = (before: Samples, after: Samples, series: string) => (after.get(series) ?? 0) - (before.get(series) ?? 0);
