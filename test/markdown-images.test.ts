/**
 * Streamed and whole-text image rewriting agree (media/markdown.ts): however a
 * text is cut into pieces, and whatever the hold bound, joining what the
 * streaming split renders (the last held tail rendered as final text) gives
 * exactly what rendering the whole text gives.
 */
import { expect, test } from "bun:test";
import { renderPieces, rewriteImages, splitImages } from "../src/media/markdown.ts";
import { seededRandom } from "./test-data.ts";

const TARGETS = ["/srv/w/a.png", "</srv/w/b b.png>", "/srv/x/c.png", "rel/d.jpg", "/srv/w/e.txt", "https://example.com/x.png", "#top"];
const ALTS = ["chart", "fig (1)", "a)b", "", "![nested"];
const TITLES = ["", ' "a title"', " 'its (title)'", ' "unclosed'];
const WORDS = ["hello ", "wow! ", "[not an image] ", "!", "![", "](", "] (", "<", ">", ")", '"', "\n", "x"];

/** Publishes what lies under /srv/w, as the gateway's allowed root would. */
const urlFor = async (target: string) => (target.startsWith("/srv/w/") && target.endsWith(".png") ? `/api/media/sig/${target.length}` : undefined);

test("any cutting of a text and any hold bound: streamed rendering equals whole-text rendering", async () => {
  for (const maxHold of [16, 45, 8192]) {
    for (let seed = 1; seed <= 40; seed++) {
      const next = seededRandom(seed);
      const pick = <T>(list: T[]) => list[Math.floor(next() * list.length)]!;
      let text = "";
      while (text.length < 3000) text += next() < 0.2 ? `![${pick(ALTS)}](${pick(TARGETS)}${pick(TITLES)})` : pick(WORDS);
      let held = "";
      let streamed = "";
      for (let at = 0; at < text.length; ) {
        const end = Math.min(text.length, at + 1 + Math.floor(next() * 12));
        const split = splitImages(held + text.slice(at, end), maxHold);
        held = split.held;
        streamed += await renderPieces(split.pieces, urlFor);
        at = end;
      }
      // At the end nothing more arrives: the held tail is final text.
      streamed += await renderPieces(splitImages(held, maxHold, true).pieces, urlFor);
      expect({ maxHold, seed, equal: streamed === (await rewriteImages(text, maxHold, urlFor)) }).toEqual({ maxHold, seed, equal: true });
    }
  }
});

test("images: published, replaced by alt text, or left alone for URLs; a held tail is only a possible image", async () => {
  const text = 'a ![x](/srv/w/a.png "t") b ![y](/srv/x/c.png) c ![z](https://example.com/x.png) d ![w](</srv/w/b b.png>)';
  expect(await rewriteImages(text, 8192, urlFor)).toBe('a ![x](/api/media/sig/12 "t") b y c ![z](https://example.com/x.png) d ![w](/api/media/sig/14)');
  expect(splitImages("see ![a)b](/srv/w/a.p", 8192).held).toBe("![a)b](/srv/w/a.p");
  expect(splitImages("see ![a] (not an image", 8192).held).toBe("");
  expect(splitImages("wow!", 8192).held).toBe("!");
  expect(splitImages("see ![a](/srv/w/a.png and more", 8192).held).toBe("");
});
