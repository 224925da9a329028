/**
 * Signed, expiring media URLs: `/api/media/<sig>/<payload>` where payload is
 * base64url("<expiry unix s>.<path relative to the media root>") and sig is
 * base64url(HMAC-SHA256(secret, payload)) cut to 16 bytes. The secret lives in
 * `<data_dir>/media-secret` (0600), so URLs survive a restart until they expire;
 * in a cluster with `cluster_media_dir` it is that shared directory's, so every
 * node signs and verifies alike.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

const SIG_BYTES = 16;
export const MEDIA_ROUTE = "/api/media/";
const MEDIA_URL = /\/api\/media\/([A-Za-z0-9_-]{22})\/([A-Za-z0-9_-]+)/g;
/** One URL (origin-relative or absolute) ending in a media route. */
const ONE_MEDIA_URL = new RegExp(`${MEDIA_URL.source}$`);

export type Verified = { ok: true; relPath: string; expiresAt: number } | { ok: false; status: 400 | 401 | 410; message: string };

/**
 * The secret in `file`, created (32 random bytes, 0600) when missing or too short. Several nodes may start
 * together on one shared directory: the new secret is written aside and linked into place, which fails when
 * another node's is already there (then that one is used), so all of them end up with the same secret.
 */
export function loadOrCreateSecret(file: string): Buffer {
  const existing = readSecret(file);
  if (existing) return existing;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const secret = randomBytes(32);
  const temp = `${file}.${randomBytes(8).toString("hex")}`;
  writeFileSync(temp, secret, { mode: 0o600 });
  try {
    linkSync(temp, file);
    return secret;
  } catch (e) {
    if ((e as { code?: string }).code !== "EEXIST") throw e;
    const won = readSecret(file);
    if (won) return won;
    // A file too short to be a secret (an old or broken one): replaced, and whatever is in place then is the secret,
    // never this node's own bytes, which a node renaming at the same time may have replaced.
    renameSync(temp, file);
    const placed = readSecret(file);
    if (!placed) throw new Error(`${file}: could not create the media signing secret`);
    return placed;
  } finally {
    rmSync(temp, { force: true });
  }
}

function readSecret(file: string): Buffer | undefined {
  if (!existsSync(file)) return undefined;
  const secret = readFileSync(file);
  return secret.length >= 32 ? secret : undefined;
}

export class MediaSigner {
  constructor(
    private readonly secret: Buffer,
    private readonly ttlS: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** An origin-relative URL for a file under the media root. */
  sign(relPath: string): string {
    const expiresAt = Math.floor(this.now() / 1000) + this.ttlS;
    const payload = Buffer.from(`${expiresAt}.${relPath}`, "utf8").toString("base64url");
    return `${MEDIA_ROUTE}${this.#mac(payload).toString("base64url")}/${payload}`;
  }

  verify(sig: string, payload: string): Verified {
    const given = /^[A-Za-z0-9_-]{22}$/.test(sig) ? Buffer.from(sig, "base64url") : undefined;
    if (!given || given.length !== SIG_BYTES || !timingSafeEqual(given, this.#mac(payload))) return { ok: false, status: 401, message: "invalid signature" };
    const decoded = /^[A-Za-z0-9_-]+$/.test(payload) ? Buffer.from(payload, "base64url").toString("utf8") : "";
    const dot = decoded.indexOf(".");
    const expiresAt = Number(decoded.slice(0, dot));
    const relPath = decoded.slice(dot + 1);
    if (dot <= 0 || !Number.isSafeInteger(expiresAt) || relPath === "") return { ok: false, status: 400, message: "invalid payload" };
    if (this.now() / 1000 > expiresAt) return { ok: false, status: 410, message: "expired" };
    return { ok: true, relPath, expiresAt };
  }

  /** Re-signs every media URL in `text` whose signature is ours (expired or not) with a fresh expiry. */
  refresh(text: string): string {
    return text.replace(MEDIA_URL, (url, sig: string, payload: string) => {
      const relPath = this.#signedPath(sig, payload);
      return relPath === undefined ? url : this.sign(relPath);
    });
  }

  /** The path a media URL (origin-relative) names when its signature is ours, expired or not. */
  pathOf(url: string): string | undefined {
    const match = ONE_MEDIA_URL.exec(url);
    return match ? this.#signedPath(match[1]!, match[2]!) : undefined;
  }

  #signedPath(sig: string, payload: string): string | undefined {
    const verified = this.verify(sig, payload);
    if (verified.ok) return verified.relPath;
    return verified.status === 410 ? Buffer.from(payload, "base64url").toString("utf8").replace(/^\d+\./, "") : undefined;
  }

  #mac(payload: string): Buffer {
    return createHmac("sha256", this.secret).update(payload).digest().subarray(0, SIG_BYTES);
  }
}
