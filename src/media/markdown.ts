/**
 * Local markdown images in agent text — `![alt](path "title")` — rewritten to
 * signed URLs (reference §4.5). URLs, anchors, queries, already-signed links and
 * non-media extensions are left alone; whether a path may be published at all
 * is the resolver's decision (it returns undefined to leave the link unchanged).
 */
import { extname } from "node:path";
import { MEDIA_ROUTE } from "./signing.ts";

const IMAGE = /!\[([^\]]*)\]\((<[^>]+>|[^)\s]+)(\s+(?:"[^"]*"|'[^']*'))?\)/g;
const MEDIA_EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".webp", ".gif", ".svg", ".mp4", ".mov", ".webm"]);

function localPath(target: string): string | undefined {
  const raw = target.startsWith("<") ? target.slice(1, -1) : target;
  if (raw === "" || raw.startsWith(MEDIA_ROUTE) || raw.startsWith("#") || /^[a-z][a-z0-9+.-]*:/i.test(raw) || /[?#]/.test(raw)) return undefined;
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  return MEDIA_EXTENSIONS.has(extname(path).toLowerCase()) ? path : undefined;
}

export async function rewriteLocalImages(text: string, urlFor: (path: string) => Promise<string | undefined>): Promise<string> {
  if (!text.includes("![")) return text;
  let out = "";
  let last = 0;
  for (const m of text.matchAll(IMAGE)) {
    const path = localPath(m[2]!);
    const url = path === undefined ? undefined : await urlFor(path);
    out += text.slice(last, m.index) + (url === undefined ? m[0] : `![${m[1]}](${url}${m[3] ?? ""})`);
    last = m.index + m[0].length;
  }
  return out + text.slice(last);
}
