/**
 * Containment of resolved paths, shared by every place that serves or deletes a
 * file named from outside (media library, web UI): one definition of "inside".
 */
import { sep } from "node:path";

/** Is `path` (already resolved) inside `root` (already resolved)? */
export function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}
