/**
 * Client → gateway frames: one TypeBox schema per envelope `type`, compiled once.
 *
 * Dispatch is on `type` first (errors against a union collapse to "Expected union
 * value"), then each envelope's fields are checked in the nanobot order, so the
 * first failing field picks the exact `detail`/`reason` strings old clients expect.
 * Envelopes are open (extra keys allowed): nanobot clients send webui, cli_apps, etc.
 */
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { lazyCheckers } from "./checkers.ts";
import {
  IMAGE_REJECT,
  IMAGE_REJECTED,
  INVALID_CALL_ID,
  INVALID_CAPABILITIES,
  INVALID_CHAT_ID,
  INVALID_CLIENT_MSG_ID,
  INVALID_SINCE_SEQ,
  INVALID_TOOL_RESULT,
  invalidEnvelope,
  MISSING_CONTENT,
  UNKNOWN_AGENT,
  UNKNOWN_TYPE_PREFIX,
} from "./errors.ts";

/** nanobot's chat_id rule, as a full match (JS `$` does not match before a trailing newline). */
export const CHAT_ID_PATTERN = "^[A-Za-z0-9_:-]{1,64}$";
export const ChatId = Type.String({ pattern: CHAT_ID_PATTERN });
const CHAT_ID_RE = new RegExp(CHAT_ID_PATTERN);
export const isChatId = (v: unknown): v is string => typeof v === "string" && CHAT_ID_RE.test(v);
const Capabilities = Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 64 });

export const NewChat = Type.Object({
  type: Type.Literal("new_chat"),
  workspace_scope: Type.Optional(Type.Unknown()),
  /** Additive: a configured agent to serve this chat instead of the default. */
  agent: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  capabilities: Type.Optional(Capabilities),
});

export const Attach = Type.Object({
  type: Type.Literal("attach"),
  chat_id: ChatId,
  /** Additive: replay every event after this seq, then continue live. */
  since_seq: Type.Optional(Type.Integer({ minimum: 0 })),
  capabilities: Type.Optional(Capabilities),
});

export const Message = Type.Object({
  type: Type.Literal("message"),
  chat_id: ChatId,
  content: Type.String(),
  media: Type.Optional(Type.Array(Type.Unknown())),
  /** Additive: media uploaded earlier over POST /api/media. */
  media_ids: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 16 })),
  webui: Type.Optional(Type.Unknown()),
  /** Additive: a resend with the same id in the same chat is acknowledged, not run twice. */
  client_msg_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  workspace_scope: Type.Optional(Type.Unknown()),
});

export const SetWorkspaceScope = Type.Object({
  type: Type.Literal("set_workspace_scope"),
  chat_id: ChatId,
  workspace_scope: Type.Unknown(),
});

/** Additive: cancel the chat's running turn (content "/stop" does the same). */
export const Stop = Type.Object({ type: Type.Literal("stop"), chat_id: ChatId });

/** Additive: a device's answer to a tool_request it can serve. */
export const ToolResultEnvelope = Type.Object({
  type: Type.Literal("tool_result"),
  chat_id: ChatId,
  call_id: Type.String({ minLength: 1, maxLength: 128 }),
  ok: Type.Boolean(),
  result: Type.Optional(Type.Unknown()),
  error: Type.Optional(Type.String({ maxLength: 4096 })),
});

/** Additive: application-level liveness for push-only clients. */
export const Ping = Type.Object({ type: Type.Literal("ping") });

export type NewChat = Static<typeof NewChat>;
export type Attach = Static<typeof Attach>;
export type Message = Static<typeof Message>;
export type SetWorkspaceScope = Static<typeof SetWorkspaceScope>;
export type Stop = Static<typeof Stop>;
export type Ping = Static<typeof Ping>;
export type ToolResultEnvelope = Static<typeof ToolResultEnvelope>;
export type Envelope = NewChat | Attach | Message | SetWorkspaceScope | Stop | Ping | ToolResultEnvelope;

/** What a client is told when a field fails; the first failing field in this order wins. */
export type EnvelopeError = { detail: string; reason?: string };
type FieldErrors = [field: string, error: EnvelopeError][];

const BAD_CHAT_ID: EnvelopeError = { detail: INVALID_CHAT_ID };
const CAPABILITIES: EnvelopeError = { detail: INVALID_CAPABILITIES };
const MEDIA: EnvelopeError = { detail: IMAGE_REJECTED, reason: IMAGE_REJECT.malformed };
const TOOL_RESULT: EnvelopeError = { detail: INVALID_TOOL_RESULT };

interface EnvelopeSpec {
  schema: TSchema;
  fieldErrors: FieldErrors;
}

const SPECS: Record<Envelope["type"], EnvelopeSpec> = {
  new_chat: { schema: NewChat, fieldErrors: [["capabilities", CAPABILITIES], ["agent", { detail: UNKNOWN_AGENT }]] },
  attach: {
    schema: Attach,
    fieldErrors: [
      ["chat_id", BAD_CHAT_ID],
      ["since_seq", { detail: INVALID_SINCE_SEQ }],
      ["capabilities", CAPABILITIES],
    ],
  },
  message: {
    schema: Message,
    fieldErrors: [
      ["chat_id", BAD_CHAT_ID],
      ["content", { detail: MISSING_CONTENT }],
      ["media", MEDIA],
      ["media_ids", MEDIA],
      ["client_msg_id", { detail: INVALID_CLIENT_MSG_ID }],
    ],
  },
  set_workspace_scope: { schema: SetWorkspaceScope, fieldErrors: [["chat_id", BAD_CHAT_ID]] },
  stop: { schema: Stop, fieldErrors: [["chat_id", BAD_CHAT_ID]] },
  ping: { schema: Ping, fieldErrors: [] },
  tool_result: {
    schema: ToolResultEnvelope,
    fieldErrors: [
      ["chat_id", BAD_CHAT_ID],
      ["call_id", { detail: INVALID_CALL_ID }],
      ["ok", TOOL_RESULT],
      ["error", TOOL_RESULT],
    ],
  },
};

const checkerOf = lazyCheckers<Envelope["type"]>(Object.fromEntries(Object.entries(SPECS).map(([type, spec]) => [type, spec.schema])) as Record<Envelope["type"], TSchema>);

/** The outcome of reading one inbound text frame. */
export type Inbound =
  | { kind: "envelope"; envelope: Envelope }
  | { kind: "invalid"; error: EnvelopeError; chat_id?: string }
  | { kind: "legacy"; content: string }
  | { kind: "ignored" };

const LEGACY_KEYS = ["content", "text", "message"] as const;

/** Python-style repr of the type string, as nanobot's "unknown type: 'x'" detail uses. */
const pyRepr = (s: string) => (s.includes("'") && !s.includes('"') ? `"${s}"` : `'${s.replaceAll("'", "\\'")}'`);

function firstFieldError(type: Envelope["type"], value: Record<string, unknown>): EnvelopeError {
  const failing = new Set<string>();
  for (const e of checkerOf(type).Errors(value)) failing.add(e.path.split("/")[1] ?? "");
  for (const [field, error] of SPECS[type].fieldErrors) if (failing.has(field)) return error;
  return { detail: invalidEnvelope(type) };
}

function readEnvelope(value: Record<string, unknown>, type: string): Inbound {
  if (!Object.hasOwn(SPECS, type)) return { kind: "invalid", error: { detail: UNKNOWN_TYPE_PREFIX + pyRepr(type) } };
  const known = type as Envelope["type"];
  const chatId = value.chat_id;
  if (checkerOf(known).Check(value)) return { kind: "envelope", envelope: value as unknown as Envelope };
  return { kind: "invalid", error: firstFieldError(known, value), chat_id: isChatId(chatId) ? chatId : undefined };
}

/** nanobot legacy frames: the first non-blank string among content, text, message. */
function readLegacyObject(value: Record<string, unknown>): Inbound {
  for (const key of LEGACY_KEYS) {
    const v = value[key];
    if (typeof v === "string" && v.trim() !== "") return { kind: "legacy", content: v };
  }
  return { kind: "ignored" };
}

/**
 * Reads one text frame. A typed envelope is a JSON object with a string `type`;
 * anything else is a legacy frame (plain text, invalid JSON as text, or {content|text|message}).
 */
export function parseInbound(raw: string): Inbound {
  const trimmed = raw.trim();
  if (trimmed === "") return { kind: "ignored" };
  if (!trimmed.startsWith("{")) return { kind: "legacy", content: raw };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return { kind: "legacy", content: raw };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { kind: "legacy", content: raw };
  const obj = value as Record<string, unknown>;
  return typeof obj.type === "string" ? readEnvelope(obj, obj.type) : readLegacyObject(obj);
}
