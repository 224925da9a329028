/**
 * The media types the gateway accepts, how to recognise each by its first bytes
 * (a declared type must match the content), and its file extension. SVG is never
 * accepted inbound: it can carry script.
 */
export type MediaKind = "image" | "video";

interface MediaType {
  kind: MediaKind;
  ext: string;
  magic: (b: Uint8Array) => boolean;
}

const at = (b: Uint8Array, offset: number, ascii: string) => [...ascii].every((c, i) => b[offset + i] === c.charCodeAt(0));
const startsWith = (b: Uint8Array, bytes: number[]) => bytes.every((x, i) => b[i] === x);

/** A Map, never a plain object: the key comes from outside (`constructor`, `__proto__` must miss). */
const MEDIA_TYPES = new Map<string, MediaType>([
  ["image/png", { kind: "image", ext: ".png", magic: (b) => startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) }],
  ["image/jpeg", { kind: "image", ext: ".jpg", magic: (b) => startsWith(b, [0xff, 0xd8, 0xff]) }],
  ["image/gif", { kind: "image", ext: ".gif", magic: (b) => at(b, 0, "GIF87a") || at(b, 0, "GIF89a") }],
  ["image/webp", { kind: "image", ext: ".webp", magic: (b) => at(b, 0, "RIFF") && at(b, 8, "WEBP") }],
  ["video/mp4", { kind: "video", ext: ".mp4", magic: (b) => at(b, 4, "ftyp") && !at(b, 8, "qt  ") }],
  ["video/quicktime", { kind: "video", ext: ".mov", magic: (b) => at(b, 4, "ftypqt") || at(b, 4, "moov") || at(b, 4, "wide") || at(b, 4, "mdat") }],
  ["video/webm", { kind: "video", ext: ".webm", magic: (b) => startsWith(b, [0x1a, 0x45, 0xdf, 0xa3]) }],
]);

/** The accepted media type named `mime`, if it is one. */
export const mediaType = (mime: string): MediaType | undefined => MEDIA_TYPES.get(mime);

/** Bytes needed to recognise any accepted type. */
export const MAGIC_BYTES = 12;

/** Served types by extension; anything else is served as application/octet-stream. */
const SERVED = new Map<string, string>([
  [".png", "image/png"],
  [".jpg", "image/jpeg"],
  [".jpeg", "image/jpeg"],
  [".gif", "image/gif"],
  [".webp", "image/webp"],
  [".svg", "image/svg+xml"],
  [".mp4", "video/mp4"],
  [".mov", "video/quicktime"],
  [".webm", "video/webm"],
]);

export function servedType(path: string): string {
  const dot = path.lastIndexOf(".");
  return (dot === -1 ? undefined : SERVED.get(path.slice(dot).toLowerCase())) ?? "application/octet-stream";
}

/** Does the content really start like the declared type? */
export function contentMatches(mime: string, head: Uint8Array): boolean {
  return MEDIA_TYPES.get(mime)?.magic(head) ?? false;
}

/** The accepted type a file's first bytes show, if any. */
export function sniff(head: Uint8Array): string | undefined {
  for (const [mime, type] of MEDIA_TYPES) if (type.magic(head)) return mime;
  return undefined;
}
