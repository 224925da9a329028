/**
 * UTF-8 sizes of JS strings without encoding them: the cheap bound first
 * (UTF-8 never takes more than 3 bytes per UTF-16 code unit), the exact count
 * (a scan) only when the bound does not settle it. The hub, the commit log and
 * the transcripts size their lines and buffers with these.
 */
export const MAX_UTF8_PER_UNIT = 3;

/** A code unit JSON-encoded takes at most this many bytes (a `\\uXXXX` escape). */
export const MAX_JSON_BYTES_PER_UNIT = 6;

/** Bytes `text` may take at most once encoded. */
export function utf8Bound(text: string): number {
  return text.length * MAX_UTF8_PER_UNIT;
}

/** Whether `text` encoded, plus `extra` bytes, exceeds `limit`. */
export function utf8Exceeds(text: string, limit: number, extra = 0): boolean {
  return utf8Bound(text) + extra > limit && Buffer.byteLength(text) + extra > limit;
}
