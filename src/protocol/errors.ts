/**
 * The error strings and close codes the gateway sends, named once. Strings that
 * nanobot's channel sends are kept verbatim so its clients keep matching them.
 */

/** `error.detail` when handling a frame failed inside the gateway (not the client's fault); the connection stays up. */
export const INTERNAL_ERROR = "internal_error";

/** RFC 6455 1011: the server hit an unexpected condition; the client should reconnect (and resume with since_seq). */
export const CLOSE_INTERNAL_ERROR = 1011;

/** `error.detail` when a chat's events cannot be stored right now (disk full, I/O error): nothing was published. */
export const STORAGE_ERROR = "storage_unavailable";
