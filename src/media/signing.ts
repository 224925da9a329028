/**
 * Signed, expiring media URLs: `/api/media/<sig>/<payload>` where payload is
 * base64url("<expiry unix s>.<path relative to the media root>") and sig is
 * base64url(HMAC-SHA256(secret, payload)) cut to 16 bytes. The secret lives in
 * `<data_dir>/media-secret` (0600), so URLs survive a restart until they expire.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const SIG_BYTES = 16;
export const MEDIA_ROUTE = "/api/media/";
const MEDIA_URL = /\/api\/media\/([A-Za-z0-9_-]{22})\/([A-Za-z0-9_-]+)/g;

export type Verified = { ok: true; relPath: string; expiresAt: number } | { ok: false; status: 400 | 401 | 410; message: string };

export function loadOrCreateSecret(file: string): Buffer {
  if (existsSync(file)) {
    const secret = readFileSync(file);
    if (secret.length >= 32) return secret;
  }
  const secret = randomBytes(32);
  writeFileSync(file, secret, { mode: 0o600 });
  return secret;
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
      const verified = this.verify(sig, payload);
      return verified.ok || verified.status === 410 ? this.sign(Buffer.from(payload, "base64url").toString("utf8").replace(/^\d+\./, "")) : url;
    });
  }

  #mac(payload: string): Buffer {
    return createHmac("sha256", this.secret).update(payload).digest().subarray(0, SIG_BYTES);
  }
}
