/**
 * The error catalog: every `error.detail` / `error.reason` string and every
 * WebSocket close code the gateway sends, named once so a client (and a test)
 * can match on one list. Strings that nanobot's channel sends are kept verbatim
 * (reference §3) so its clients keep matching them; the rest are ours.
 * Dependency-free: the client SDK imports the close codes from here.
 */

// ── error.detail sent to clients (nanobot's strings first) ──────────────────
export const INVALID_CHAT_ID = "invalid chat_id";
export const MISSING_CONTENT = "missing content";
export const IMAGE_REJECTED = "image_rejected";
export const WORKSPACE_SCOPE_REJECTED = "workspace_scope_rejected";
/** Followed by the type in Python repr quoting: `unknown type: 'nope'`. */
export const UNKNOWN_TYPE_PREFIX = "unknown type: ";
export const INVALID_CAPABILITIES = "invalid capabilities";
export const INVALID_SINCE_SEQ = "invalid since_seq";
export const INVALID_CLIENT_MSG_ID = "invalid client_msg_id";
export const INVALID_CALL_ID = "invalid call_id";
export const INVALID_TOOL_RESULT = "invalid tool_result";
/** An envelope of a known type that fails its schema elsewhere: `invalid <type>`. */
export const invalidEnvelope = (type: string) => `invalid ${type}`;
/** new_chat named an agent that is not configured; reason: the name. */
export const UNKNOWN_AGENT = "unknown agent";
/** attach with since_seq while a replay of that chat to this socket is still running. */
export const REPLAY_IN_PROGRESS = "replay_in_progress";
/** The chat's queue of waiting turns is full: send again once it has room. */
export const CHAT_BUSY = "chat_busy";
/** tool_result for a call the gateway does not know; reason: the call_id. */
export const UNKNOWN_CALL_ID = "unknown call_id";
export const TOOL_RESULT_REJECTED = "tool_result_rejected";
/** Handling a frame failed inside the gateway (not the sender's fault); the connection stays up. */
export const INTERNAL_ERROR = "internal_error";
/** A chat's events cannot be stored right now (disk full, I/O error): nothing was published. */
export const STORAGE_ERROR = "storage_unavailable";

// ── error.reason values ─────────────────────────────────────────────────────
/** workspace_scope_rejected reasons, nanobot's verbatim (chatRunning: a turn runs in the chat). */
export const SCOPE_REJECT = {
  chatRunning: "chat_running",
  notLocal: "workspace controls are localhost-only",
  notObject: "workspace_scope must be an object",
  pathNotString: "project_path must be a string",
  pathInvalidCharacters: "project_path contains invalid characters",
  pathNotAbsolute: "project_path must be absolute",
  pathNotDirectory: "project_path must be an existing directory",
  modeNotString: "access_mode must be a string",
  modeUnknown: "access_mode must be restricted or full",
} as const;
export type ScopeRejectReason = (typeof SCOPE_REJECT)[keyof typeof SCOPE_REJECT];
/** image_rejected reasons: nanobot's (counts, malformed, decode, mime, size) and ours (unknown_media: a media_id not uploaded to this chat). */
export const IMAGE_REJECT = {
  tooManyImages: "too_many_images",
  tooManyVideos: "too_many_videos",
  malformed: "malformed",
  decode: "decode",
  mime: "mime",
  size: "size",
  unknownMedia: "unknown_media",
} as const;
export type ImageRejectReason = (typeof IMAGE_REJECT)[keyof typeof IMAGE_REJECT];
export const NOT_CAPABLE = "not attached to the chat or tool not declared";
export const MESSAGE_NOT_STORED = "message not stored; send it again";
/** storage_unavailable reasons (hub): the store failed, one event exceeded the size guard, or (clustered) another gateway writes the chat. */
export const STORE_FAILED = "storage_error";
export const EVENT_TOO_LARGE = "event_too_large";
export const CHAT_OWNED_ELSEWHERE = "chat_owned_elsewhere";
/** The frame the gateway could not handle (agent or client side). */
export const FRAME_NOT_HANDLED = "the gateway could not handle this frame";

// ── error frames sent to agents ─────────────────────────────────────────────
export const INVALID_FRAME = "invalid frame";
export const UNKNOWN_TURN_ID = "unknown turn_id";
export const HELLO_REQUIRED = "hello required";
export const HELLO_REQUIRED_REASON = "first frame must be hello naming a configured ws agent";
/** invalid frame reasons (a schema failure names the field instead). */
export const FRAME_NOT_JSON = "not JSON";
export const FRAME_NOT_OBJECT = "not a JSON object";
/** tool_result.error the gateway answers an agent's tool call with when no client does. */
export const TOOL_CALL_FAILED = {
  duplicate: "duplicate call_id",
  deadline: "deadline_exceeded",
  noCapableClient: "no_capable_client",
  deviceDisconnected: "device_disconnected",
  turnEnded: "turn_ended",
} as const;

// ── turn_end.error when the agent side failed ───────────────────────────────
/** The agent could not be started or reached in time. */
export const AGENT_UNAVAILABLE = "agent_unavailable";
/** The ws agent went away and did not come back within the grace period. */
export const AGENT_DISCONNECTED = "agent_disconnected";
/** The gateway stopped while the turn ran. */
export const GATEWAY_SHUTDOWN = "gateway_shutdown";

// ── /api error answers ({error, reason}) beyond http/refusal.ts's callers ───
export const HTTP_INTERNAL = "internal";
export const HTTP_INTERNAL_REASON = "internal server error";
export const HTTP_NOT_STORED_REASON = "the message could not be stored; nothing was published";
/** Clustered: Redis or PostgreSQL failed while finding the chat's writer (503); nothing was handed to it. */
export const HTTP_SHARED_STORE_REASON = "the cluster's shared store failed while finding the chat's writer; nothing was done";
/** Clustered: Redis or PostgreSQL failed while a read was answered (503), e.g. the sessions API gathering a chat's history. */
export const HTTP_SHARED_STORE_READ_REASON = "the cluster's shared store failed; try again";
/** Clustered: the chat's writer did not answer a forwarded chats-API request in time (504); it may still have acted on it. */
export const HTTP_OUTCOME_UNKNOWN = "outcome_unknown";
export const HTTP_PUBLISH_UNKNOWN_REASON = "the chat's writer did not answer in time; the message may still be published (read the chat before sending it again)";
export const HTTP_STOP_UNKNOWN_REASON = "the chat's writer did not answer in time; its turn may still be stopped";
/** Clustered: an issue route's token could not be recorded in the cluster's Redis (503); nothing was handed out. */
export const HTTP_TOKENS_UNAVAILABLE = "tokens_unavailable";
export const HTTP_TOKENS_UNAVAILABLE_REASON = "the token could not be recorded for the cluster; try again";

// ── WebSocket close codes and reasons (RFC 6455 §7.4; 4000–4999 are ours) ───
/** Shutdown: the gateway is going away; clients reconnect soon. */
export const CLOSE_GOING_AWAY = 1001;
export const GOING_AWAY_REASON = "server shutting down";
export const AGENT_GOING_AWAY_REASON = "gateway shutting down";
/** A ws agent broke the handshake (no hello in time, or a bad one). */
export const CLOSE_POLICY = 1008;
export const NO_HELLO_REASON = "no hello";
export const BAD_HELLO_REASON = "bad hello";
/** A frame larger than the gateway accepts (Bun closes with it). */
export const CLOSE_TOO_BIG = 1009;
/** The server hit an unexpected condition; the client should reconnect (and resume with since_seq). */
export const CLOSE_INTERNAL_ERROR = 1011;
/** A ws agent connection replaced by a newer one for the same agent. */
export const CLOSE_REPLACED = 4000;
export const REPLACED_REASON = "replaced by a newer connection";
/**
 * The client stopped reading: more than `slow_consumer_bytes` were queued for it.
 * Nothing was dropped; the client reconnects and sends `attach {chat_id, since_seq}`
 * with the last seq it saw in each chat, and gets every later event.
 */
export const CLOSE_SLOW_CONSUMER = 4001;
export const SLOW_CONSUMER_REASON = "slow_consumer: reconnect and attach with since_seq";
