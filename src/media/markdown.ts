/**
 * Markdown images in agent text — `![alt](target "title")` — found in whole text
 * and in text that arrives in pieces (reference §4.5). An image whose target is a
 * URL, an anchor or an already-signed media link is left alone; any other target
 * is a path on this machine: it becomes a signed URL when it may be published,
 * else the image becomes its alt text. No server path reaches a client either way.
 *
 * Streamed text is split so that a tail which may still become an image is held
 * back (up to `maxHold` characters). The grammar is chosen so that whether an
 * image starts at a position, and where it ends, is decided by the characters up
 * to its end: splitting text at any boundaries and joining the results gives the
 * same images as scanning the whole text at once.
 */
import { extname } from "node:path";
import { MEDIA_ROUTE } from "./signing.ts";

/** alt (no "]"), target (`<…>` or a run without ")", space or a leading "<"), optional quoted title. */
const IMAGE_SOURCE = `!\\[([^\\]]*)\\]\\((<[^>\\n]+>|[^<)\\s][^)\\s]*)(\\s+(?:"[^"]*"|'[^']*'))?\\)`;
const IMAGE_AT = new RegExp(IMAGE_SOURCE, "y");
/** Every prefix of an image (and a little more): text that may still become one. */
const IMAGE_PREFIX = /^!(?:\[[^\]]*(?:\](?:\((?:<[^>\n]*>?|[^<)\s][^)\s]*)?(?:\s+(?:"[^"]*"?|'[^']*'?)?)?)?)?)?$/;
const MEDIA_EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".webp", ".gif", ".svg", ".mp4", ".mov", ".webm"]);

export interface ImageRef {
  /** The image as written. */
  raw: string;
  alt: string;
  /** The target as written (angle brackets removed). */
  target: string;
  /** The title with its leading space and quotes, or "". */
  title: string;
}

export type Piece = string | ImageRef;

/**
 * Splits text into plain runs and complete images, and returns the tail that may
 * still become an image (empty when `final`: nothing more will arrive). Images
 * longer than `maxHold` characters are plain text, streamed or not.
 */
export function splitImages(text: string, maxHold: number, final = false): { pieces: Piece[]; held: string } {
  const pieces: Piece[] = [];
  let plainFrom = 0;
  for (let i = text.indexOf("!"); i !== -1; ) {
    IMAGE_AT.lastIndex = i;
    const m = IMAGE_AT.exec(text);
    if (m && m[0].length <= maxHold) {
      if (i > plainFrom) pieces.push(text.slice(plainFrom, i));
      const target = m[2]!;
      pieces.push({ raw: m[0], alt: m[1]!, target: target.startsWith("<") ? target.slice(1, -1) : target, title: m[3] ?? "" });
      plainFrom = i + m[0].length;
      i = text.indexOf("!", plainFrom);
      continue;
    }
    if (!m && !final && text.length - i <= maxHold && IMAGE_PREFIX.test(text.slice(i))) {
      if (i > plainFrom) pieces.push(text.slice(plainFrom, i));
      return { pieces, held: text.slice(i) };
    }
    i = text.indexOf("!", i + 1);
  }
  if (plainFrom < text.length) pieces.push(text.slice(plainFrom));
  return { pieces, held: "" };
}

export const isImage = (piece: Piece): piece is ImageRef => typeof piece !== "string";

/** Targets that are not paths on this machine: left as written. */
function isUrl(target: string): boolean {
  return target.startsWith(MEDIA_ROUTE) || target.startsWith("#") || target.startsWith("//") || /^[a-z][a-z0-9+.-]*:/i.test(target);
}

/** The file an image points to, when it is a media file that could be published. */
export function localMediaPath(target: string): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(target);
  } catch {
    return undefined;
  }
  return MEDIA_EXTENSIONS.has(extname(path).toLowerCase()) ? path : undefined;
}

/** Resolves a local image target to a signed URL, or undefined when it may not be published. */
export type ImageUrlFor = (target: string) => Promise<string | undefined>;

/**
 * The markdown for one image: as written for a URL target, with the signed URL
 * from `urlFor` for a publishable local target, else its alt text.
 */
async function renderImage(image: ImageRef, urlFor: ImageUrlFor): Promise<string> {
  if (isUrl(image.target)) return image.raw;
  const url = await urlFor(image.target);
  return url === undefined ? image.alt : `![${image.alt}](${url}${image.title})`;
}

/** Joins pieces, rendering each image. */
export async function renderPieces(pieces: Piece[], urlFor: ImageUrlFor): Promise<string> {
  let out = "";
  for (const piece of pieces) out += isImage(piece) ? await renderImage(piece, urlFor) : piece;
  return out;
}

/** Whole text: every image rendered (see `renderImage`). */
export function rewriteImages(text: string, maxHold: number, urlFor: ImageUrlFor): Promise<string> {
  if (!text.includes("![")) return Promise.resolve(text);
  return renderPieces(splitImages(text, maxHold, true).pieces, urlFor);
}
