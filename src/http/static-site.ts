/**
 * The web UI at `/`. With `webui_dir` set, a built single-page app is served from
 * that folder (nanobot's static SPA, reference §4.6): a file by its path, and
 * `index.html` for any other page path so client-side routes survive a reload.
 * Without it, the built-in chat page (src/web/page.ts) is served instead.
 *
 * Only GET and HEAD. A path with a `..` segment, a NUL or a backslash is refused
 * (403), and the resolved file must stay inside the folder after symlinks are
 * followed: nothing outside it is ever read. Directories are never listed. A
 * missing path that names a file (it has an extension) is a 404, not the index,
 * so a stale asset URL fails loudly instead of being parsed as HTML.
 *
 * Caching: `index.html` must be revalidated (it names the current assets); files
 * whose names carry a build hash never change and are cached for a year.
 */
import { realpathSync, statSync } from "node:fs";
import { extname, join, sep } from "node:path";
import { isInside } from "../path-inside.ts";
import type { Handler } from "hono";
import { refusal } from "./refusal.ts";

/** Vite, Rollup, esbuild and webpack name built assets `name-<hash>.ext` or `name.<hash>.ext`. */
const HASHED_NAME = /[.-][A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;
const INDEX = "index.html";

export interface StaticSiteOptions {
  /** The built app's folder. */
  root: string;
  /** Content-Security-Policy for every page and asset. */
  csp: string;
}

const refuse = (status: 403 | 404, reason: string) => refusal(status, status === 403 ? "Forbidden" : "Not Found", reason);

/** Headers every page and asset of a web UI carries. */
export const securityHeaders = (csp: string) => ({ "Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer" });
/** Cache-Control of a file whose name carries its content hash. */
export const IMMUTABLE = "public, max-age=31536000, immutable";

/** The regular file at `relPath` under `root` (symlinks resolved, still inside), or undefined. */
function fileInside(root: string, relPath: string): string | undefined {
  try {
    const real = realpathSync(join(root, relPath));
    return isInside(root, real) && statSync(real).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

function serveFile(method: string, path: string, csp: string): Response {
  const file = Bun.file(path);
  const cache = !path.endsWith(sep + INDEX) && HASHED_NAME.test(path) ? IMMUTABLE : "no-cache";
  const headers = { ...securityHeaders(csp), "Content-Type": file.type, "Content-Length": String(file.size), "Cache-Control": cache };
  return new Response(method === "HEAD" ? null : file, { headers });
}

export function staticSite({ root, csp }: StaticSiteOptions): Handler {
  const realRoot = realpathSync(root);
  return (c) => {
    for (const [name, value] of Object.entries(securityHeaders(csp))) c.header(name, value);
    let relPath: string;
    try {
      relPath = decodeURIComponent(new URL(c.req.url).pathname);
    } catch {
      return refuse(403, "malformed path");
    }
    if (relPath.includes("\0") || relPath.includes("\\") || relPath.split("/").includes("..")) return refuse(403, "path traversal");
    const file = relPath === "/" ? undefined : fileInside(realRoot, relPath);
    if (file) return serveFile(c.req.method, file, csp);
    if (relPath !== "/" && extname(relPath) !== "") return refuse(404, "no such file");
    const index = fileInside(realRoot, INDEX);
    return index ? serveFile(c.req.method, index, csp) : refuse(404, "the web UI has no index.html");
  };
}
