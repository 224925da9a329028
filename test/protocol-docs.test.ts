/**
 * docs/protocol/ is generated from the TypeBox schemas by `agentgate schema`;
 * these tests fail when the committed files are stale, and check that the
 * AsyncAPI document points only at schemas that exist.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { BUN, REPO_ROOT, tempDir } from "./helpers.ts";

const DOCS = join(REPO_ROOT, "docs/protocol");
const listFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();

test("`agentgate schema --out DIR` writes exactly the committed docs/protocol/ (run `npm run schema` when this fails)", () => {
  const out = tempDir("agentgate-schema-");
  const run = Bun.spawnSync([BUN, join(REPO_ROOT, "src/main.ts"), "schema", "--out", out], { cwd: out });
  expect(run.stderr.toString()).toBe("");
  expect(run.exitCode).toBe(0);
  const files = listFiles(out);
  expect(listFiles(DOCS)).toEqual(files);
  for (const f of files) expect(`${f}\n${readFileSync(join(DOCS, f), "utf8")}`).toBe(`${f}\n${readFileSync(join(out, f), "utf8")}`);
});

test("the AsyncAPI document names every client frame and server event, each with a schema file", () => {
  const doc = JSON.parse(readFileSync(join(DOCS, "asyncapi.json"), "utf8"));
  expect(doc.asyncapi).toBe("3.0.0");
  const messages = Object.values(doc.channels.client.messages) as { payload: { $ref: string } }[];
  expect(messages.length).toBe(listFiles(join(DOCS, "client")).length + listFiles(join(DOCS, "server")).length);
  for (const m of messages) expect(JSON.parse(readFileSync(join(DOCS, m.payload.$ref), "utf8")).type).toBe("object");
});
