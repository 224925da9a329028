/**
 * A small Markdown renderer that builds DOM nodes (never HTML strings): fenced
 * code, headings, lists, quotes, paragraphs; inline code, bold, italics, links,
 * images and bare URLs. Links keep only http(s) and same-origin targets; images
 * only this gateway's signed /api/media URLs (and blob: previews). Anything else
 * stays visible as text, so an agent's `<img onerror>` or `javascript:` link is inert.
 */
import { h } from "./dom.ts";

/** A link target we allow, resolved against the page; undefined when refused. */
export function safeLink(raw: string): string | undefined {
  try {
    const url = new URL(raw, location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** An image source we allow: this gateway's media route, or a local blob preview. */
export function safeImage(raw: string): string | undefined {
  try {
    const url = new URL(raw, location.href);
    if (url.protocol === "blob:" && raw.startsWith(`blob:${location.origin}/`)) return raw;
    return url.origin === location.origin && url.pathname.startsWith("/api/media/") ? url.href : undefined;
  } catch {
    return undefined;
  }
}

const INLINE = /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|!\[([^\]]*)\]\(([^)\s]+)\)|\[([^\]]+)\]\(([^)\s]+)\)|\*\*([^*]+)\*\*|__([^_]+)__|\*([^*\s][^*]*)\*|\bhttps?:\/\/[^\s<>()]+[^\s<>().,;:!?'"]/g;

function link(text: string, href: string): Node {
  const target = safeLink(href);
  return target ? h("a", { href: target, target: "_blank", rel: "noopener noreferrer nofollow" }, text) : document.createTextNode(`[${text}](${href})`);
}

function image(alt: string, src: string): Node {
  const url = safeImage(src);
  if (url) return h("img", { src: url, alt, loading: "lazy" });
  return link(alt || src, src);
}

export function inline(text: string): Node[] {
  const out: Node[] = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    last = m.index + m[0].length;
    if (m[1]) out.push(h("code", {}, m[2] ?? ""));
    else if (m[4] !== undefined) out.push(image(m[3] ?? "", m[4]));
    else if (m[6] !== undefined) out.push(link(m[5] ?? "", m[6]));
    else if (m[7] ?? m[8]) out.push(h("strong", {}, ...inline(m[7] ?? m[8] ?? "")));
    else if (m[9]) out.push(h("em", {}, ...inline(m[9])));
    else out.push(link(m[0], m[0]));
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

const FENCE = /^(```|~~~)\s*([\w+#.-]*)\s*$/;
const HEADING = /^(#{1,6})\s+(.*)$/;
const LIST_ITEM = /^\s*([-*+]|\d+[.)])\s+(.*)$/;
const QUOTE = /^>\s?(.*)$/;

/** Consumes lines while `test` holds, from `start`; returns them and where it stopped. */
function take(lines: string[], start: number, test: (line: string) => boolean): [string[], number] {
  let i = start;
  while (i < lines.length && test(lines[i] ?? "")) i++;
  return [lines.slice(start, i), i];
}

function codeBlock(lines: string[], start: number, fence: string, lang: string): [Node, number] {
  const [body, end] = take(lines, start, (l) => !l.trimEnd().startsWith(fence));
  const code = h("code", lang ? { "data-lang": lang } : {}, body.join("\n"));
  const copy = h("button", { type: "button", class: "copy", title: "Copy" }, "copy");
  copy.addEventListener("click", () => void navigator.clipboard?.writeText(code.textContent ?? ""));
  return [h("div", { class: "code" }, lang && h("span", { class: "lang" }, lang), copy, h("pre", {}, code)), end + 1];
}

function list(items: string[]): Node {
  const ordered = /^\s*\d/.test(items[0] ?? "");
  const el = h(ordered ? "ol" : "ul");
  for (const item of items) el.append(h("li", {}, ...inline(item.replace(LIST_ITEM, "$2"))));
  return el;
}

/** Renders Markdown into a fragment; an unclosed fence (mid-stream) runs to the end. */
export function markdown(source: string): DocumentFragment {
  const out = document.createDocumentFragment();
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    const fence = FENCE.exec(line.trim());
    let taken: string[];
    if (fence) {
      let node: Node;
      [node, i] = codeBlock(lines, i + 1, fence[1] ?? "```", fence[2] ?? "");
      out.append(node);
    } else if (line.trim() === "") i++;
    else if (HEADING.test(line)) {
      const [, hashes = "#", text = ""] = HEADING.exec(line) ?? [];
      out.append(h(`h${Math.min(hashes.length + 2, 6)}` as "h3", {}, ...inline(text)));
      i++;
    } else if (QUOTE.test(line)) {
      [taken, i] = take(lines, i, (l) => QUOTE.test(l));
      out.append(h("blockquote", {}, markdown(taken.map((l) => l.replace(QUOTE, "$1")).join("\n"))));
    } else if (LIST_ITEM.test(line)) {
      [taken, i] = take(lines, i, (l) => LIST_ITEM.test(l));
      out.append(list(taken));
    } else {
      [taken, i] = take(lines, i, (l) => l.trim() !== "" && !FENCE.test(l.trim()) && !HEADING.test(l) && !LIST_ITEM.test(l) && !QUOTE.test(l));
      const p = h("p");
      taken.forEach((l, n) => p.append(...(n > 0 ? [h("br")] : []), ...inline(l)));
      out.append(p);
    }
  }
  return out;
}
