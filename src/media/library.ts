/**
 * Files under `<data_dir>/media` (or a cluster's shared `cluster_media_dir`), one row each. Writes go to a temp file and
 * are renamed into place, so a reader never sees half a file; a batch is all or
 * nothing. Paths that come from outside are resolved through realpath and must
 * stay inside their root (no "..", no absolute escape, no symlink out). Rows
 * hold paths relative to the root, so a directory several nodes share names
 * every file alike on each of them.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { copyFile, readdir, rename, rm, unlink } from "node:fs/promises";
import { basename, extname, isAbsolute, join, relative, sep } from "node:path";
import { isInside } from "../path-inside.ts";
import { eq, inArray, isNull } from "drizzle-orm";
import type { Logger } from "../log.ts";
import type { Db } from "../store/db.ts";
import type { SharedMetadata } from "../store/shared-metadata.ts";
import { media } from "../store/schema.ts";
import type { DecodedMedia } from "./data-url.ts";
import { mediaType, servedType, sniff } from "./mime.ts";
import type { MediaSigner } from "./signing.ts";

export interface MediaRef {
  id: string;
  relPath: string;
  mime: string;
  name: string;
  size: number;
}

const TMP_DIR = ".tmp";
const UPLOADS_DIR = "uploads";

/** Was the file last modified before `ms` (epoch)? A file gone meanwhile is not. */
function modifiedBefore(path: string, ms: number): boolean {
  const stat = statSync(path, { throwIfNoEntry: false });
  return stat !== undefined && stat.mtimeMs < ms;
}

/** realpath that returns undefined for anything missing. */
function real(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

export class MediaLibrary {
  readonly root: string;

  constructor(
    root: string,
    private readonly db: Db,
    private readonly signer: MediaSigner,
    private readonly log: Logger,
    /** The cluster's shared metadata, when configured: rows are queued there too. */
    private readonly shared?: SharedMetadata,
    /**
     * Set when other nodes write into this root too (cluster_media_dir): their files have no row here, so the
     * sweep removes only temp files nobody has written to for this long (an upload that died with its node).
     */
    private readonly sharedRootTempGraceMs?: number,
  ) {
    mkdirSync(join(root, TMP_DIR), { recursive: true, mode: 0o700 });
    this.root = realpathSync(root);
  }

  /** The absolute path of a regular file under the root named by an untrusted relative path, or undefined. */
  resolveInside(relPath: string): string | undefined {
    if (relPath.includes("\0") || isAbsolute(relPath) || relPath.split(/[\\/]/).includes("..")) return undefined;
    const path = real(join(this.root, relPath));
    if (!path || !isInside(this.root, path)) return undefined;
    return statSync(path).isFile() ? path : undefined;
  }

  url(ref: Pick<MediaRef, "relPath">): string {
    return this.signer.sign(ref.relPath);
  }

  /** For agents: where the file is, with the URL clients were given for it. */
  forAgent(ref: MediaRef, url: string) {
    return { url, path: join(this.root, ref.relPath), mime: ref.mime, name: ref.name };
  }

  /**
   * For agents, from the URLs a message's `user` event carries (a turn this node runs for a message another
   * node accepted: a takeover): the files this node can read, i.e. URLs signed with its secret naming a file
   * under its root (a shared cluster_media_dir); any other is left out.
   */
  forAgentFromUrls(items: readonly { url: string; name: string }[]) {
    return items.flatMap(({ url, name }) => {
      const relPath = this.signer.pathOf(url);
      const path = relPath === undefined ? undefined : this.resolveInside(relPath);
      return path ? [{ url: this.signer.sign(relPath!), path, mime: servedType(path), name }] : [];
    });
  }

  /**
   * Stores a decoded batch for a chat (whose row must exist), all or nothing.
   * Synchronous on purpose: the bytes are already in memory (bounded by the frame
   * limit), and it keeps a message's media ahead of the socket's next frame.
   */
  saveBatch(chatId: string, batch: DecodedMedia[]): MediaRef[] {
    const written: string[] = [];
    try {
      const refs: MediaRef[] = [];
      for (const item of batch) {
        const ref = this.#newRef(chatId, item.mime, item.name, item.bytes.length);
        const temp = this.tempPath();
        writeFileSync(temp, item.bytes, { mode: 0o600 });
        renameSync(temp, join(this.root, ref.relPath));
        written.push(ref.relPath);
        refs.push(ref);
      }
      this.#insert(chatId, refs, batch.map((b) => createHash("sha256").update(b.bytes).digest("hex")));
      return refs;
    } catch (e) {
      for (const p of written) unlinkSync(join(this.root, p));
      throw e;
    }
  }

  /** A fresh temp path for a streamed upload; the caller renames it with `adoptUpload`. */
  tempPath(): string {
    return join(this.root, TMP_DIR, randomBytes(12).toString("hex"));
  }

  /** Files a finished upload (not yet tied to a chat). */
  async adoptUpload(tempFile: string, mime: string, name: string, size: number, sha256: string): Promise<MediaRef> {
    const ref = { ...this.#newRef(undefined, mime, name, size) };
    await rename(tempFile, join(this.root, ref.relPath));
    this.#insert(null, [ref], [sha256]);
    return ref;
  }

  /** Uploads a message may use: each id must exist and be unclaimed or already this chat's. */
  uploads(ids: string[], chatId: string): MediaRef[] | undefined {
    if (ids.length === 0) return [];
    const rows = new Map(this.db.select().from(media).where(inArray(media.id, ids)).all().map((r) => [r.id, r]));
    if (rows.size !== new Set(ids).size || [...rows.values()].some((r) => r.chatId !== null && r.chatId !== chatId)) return undefined;
    return [...new Set(ids)].map((id) => rows.get(id)!).map((r) => ({ id: r.id, relPath: r.path, mime: r.mime, name: r.name, size: r.size }));
  }

  /** Ties uploads to a chat (whose row must exist). */
  claim(ids: string[], chatId: string): void {
    if (ids.length === 0) return;
    this.db.update(media).set({ chatId }).where(inArray(media.id, ids)).run();
    this.shared?.mediaClaimed(ids, chatId);
  }

  /**
   * Outbound: a file an agent named. Inside the media root it is used as is;
   * inside an allowed root it is copied once into the chat's folder, named by its
   * content hash; anywhere else it is refused (undefined).
   */
  async stage(chatId: string, path: string, allowedRoots: string[], maxBytes: number): Promise<MediaRef | undefined> {
    const file = real(path);
    const stat = file === undefined ? undefined : statSync(file);
    if (!file || !stat?.isFile()) return undefined;
    const name = basename(path);
    const size = stat.size;
    if (isInside(this.root, file)) return { id: "", relPath: relative(this.root, file), mime: "", name, size };
    const roots = allowedRoots.map(real).filter((r): r is string => r !== undefined);
    if (!roots.some((root) => isInside(root, file)) || size > maxBytes) return undefined;
    const hasher = new Bun.CryptoHasher("sha256");
    for await (const chunk of Bun.file(file).stream()) hasher.update(chunk);
    const sha256 = hasher.digest("hex");
    const head = new Uint8Array(await Bun.file(file).slice(0, 16).arrayBuffer());
    const mime = sniff(head) ?? "application/octet-stream";
    const relPath = join(chatId, `staged-${sha256.slice(0, 24)}${extname(name).toLowerCase().replace(/[^.a-z0-9]/g, "")}`);
    const existing = this.db.select().from(media).where(eq(media.path, relPath)).get();
    if (existing) return { id: existing.id, relPath, mime: existing.mime, name, size };
    mkdirSync(join(this.root, chatId), { recursive: true, mode: 0o700 });
    const temp = this.tempPath();
    await copyFile(file, temp);
    await rename(temp, join(this.root, relPath));
    const ref = { id: randomBytes(12).toString("hex"), relPath, mime, name, size };
    this.#insert(chatId, [ref], [sha256]);
    return ref;
  }

  /** Deletes the chat's files (rows go with the chat). */
  async removeChat(chatId: string): Promise<void> {
    const rows = this.db.select({ id: media.id, path: media.path }).from(media).where(eq(media.chatId, chatId)).all();
    await Promise.all(rows.map((r) => unlink(join(this.root, r.path)).catch(() => {})));
    await rm(join(this.root, chatId), { recursive: true, force: true });
    this.db.delete(media).where(eq(media.chatId, chatId)).run();
    if (rows.length > 0) this.shared?.mediaRemoved(rows.map((r) => r.id));
  }

  /**
   * After start, while serving: files no row points to are deleted, and so are rows whose file is gone,
   * unless none of the rows' files is there (then nothing is: the directory is not the one they are in).
   * Only files last modified before `beforeMs` count as orphans: a file written since (an upload being
   * streamed, or renamed into place just before its row is inserted) belongs to a request in flight.
   */
  async sweep(beforeMs: number): Promise<{ files: number; rows: number }> {
    const rows = this.db.select({ id: media.id, path: media.path }).from(media).all();
    // Not one of the rows' files here: the root is not the one they were written to (a shared directory
    // not mounted, an emptied disk). Sweeping would delete every row (and, shared, the cluster's rows of record).
    if (rows.length > 0 && !rows.some((r) => existsSync(join(this.root, r.path)))) {
      this.log.error("media sweep skipped: the media directory holds none of the files its rows name (not mounted?); nothing deleted", { root: this.root, rows: rows.length });
      return { files: 0, rows: 0 };
    }
    const known = new Set(rows.map((r) => r.path));
    const grace = this.sharedRootTempGraceMs;
    const [dir, before] = grace === undefined ? [this.root, beforeMs] : [join(this.root, TMP_DIR), Math.min(beforeMs, Date.now() - grace)];
    let files = 0;
    for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const rel = relative(this.root, join(entry.parentPath, entry.name));
      if (known.has(rel) || !modifiedBefore(join(this.root, rel), before)) continue;
      await unlink(join(this.root, rel)).catch(() => {});
      files++;
    }
    const missing = rows.filter((r) => !existsSync(join(this.root, r.path))).map((r) => r.id);
    this.#remove(missing);
    if (files + missing.length > 0) this.log.warn("media sweep removed orphans", { files, rows: missing.length });
    return { files, rows: missing.length };
  }

  /** Uploads no message claimed, older than `ms`: removed (rows and files). */
  async forgetUnclaimedUploads(ms: number): Promise<void> {
    const cutoff = new Date(Date.now() - ms);
    const rows = this.db.select().from(media).where(isNull(media.chatId)).all().filter((r) => r.createdAt < cutoff);
    await Promise.all(rows.map((r) => unlink(join(this.root, r.path)).catch(() => {})));
    this.#remove(rows.map((r) => r.id));
  }

  #newRef(chatId: string | undefined, mime: string, name: string, size: number): MediaRef {
    const id = randomBytes(12).toString("hex");
    const dir = chatId ?? UPLOADS_DIR;
    mkdirSync(join(this.root, dir), { recursive: true, mode: 0o700 });
    return { id, relPath: join(dir, `${id}${mediaType(mime)?.ext ?? ".bin"}`), mime, name, size };
  }

  #insert(chatId: string | null, refs: MediaRef[], hashes: string[]): void {
    if (refs.length === 0) return;
    const now = new Date();
    const rows = refs.map((r, i) => ({ id: r.id, chatId, path: r.relPath, mime: r.mime, name: r.name, size: r.size, sha256: hashes[i]!, createdAt: now }));
    this.db.insert(media).values(rows).onConflictDoNothing().run();
    this.shared?.mediaAdded(rows);
  }

  #remove(ids: string[]): void {
    if (ids.length === 0) return;
    this.db.delete(media).where(inArray(media.id, ids)).run();
    this.shared?.mediaRemoved(ids);
  }
}
