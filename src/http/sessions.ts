/**
 * The sessions API (reference §4, §4.3), under the API credential:
 *   GET  /api/sessions                       newest first, no filesystem paths
 *   GET  /api/sessions/{key}/messages        user/assistant messages folded from the transcript
 *   GET  /api/sessions/{key}/webui-thread    schemaVersion 3 thread
 *   GET|POST|DELETE /api/sessions/{key}/delete   row, transcript (and later media) removed
 *   GET|POST /api/sessions/{key}/rename?title=…  emits session_updated
 * Keys are nanobot's `websocket:<chat_id>`, percent-decoded and validated (400);
 * keys of other channels or unknown chats are 404.
 *
 * Chats are listed, found, renamed and deleted through a SessionDirectory: this
 * node's SQLite (localSessions), or in a cluster with `store_postgres_url` the
 * shared metadata (src/cluster/shared-sessions.ts), so every node answers the same.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { Hub } from "../chat/hub.ts";
import type { ChatReader } from "../chat/reader.ts";
import { foldThread } from "../chat/thread.ts";
import { isChatId } from "../protocol/client.ts";
import type { Runs } from "../runs/runs.ts";
import type { ChatRow, ChatStore } from "../store/chat-store.ts";
import { refusal } from "./refusal.ts";

/** The chat rows the API shows. */
export type SessionRow = Pick<ChatRow, "id" | "title" | "preview" | "createdAt" | "updatedAt" | "metadata">;

export interface SessionDirectory {
  /** Newest first. */
  list(): SessionRow[] | Promise<SessionRow[]>;
  get(chatId: string): SessionRow | undefined | Promise<SessionRow | undefined>;
  /** Sets the title and tells the chat's clients (session_updated). */
  rename(chatId: string, title: string): void | Promise<void>;
  /** Stops the chat's turn, then removes everything it owns on disk and in memory. */
  delete(chatId: string): Promise<void>;
}

/** A single node's sessions: its own SQLite. */
export function localSessions(store: ChatStore, hub: Hub, deleteChat: (chatId: string) => Promise<void>): SessionDirectory {
  return {
    list: () => store.list(),
    get: (chatId) => store.get(chatId),
    rename: (chatId, title) => {
      store.setTitle(chatId, title);
      hub.publish({ event: "session_updated", chat_id: chatId, scope: "metadata", title });
    },
    delete: deleteChat,
  };
}

export interface SessionsDeps {
  directory: SessionDirectory;
  runs: Runs;
  reader: ChatReader;
  /** A stored transcript line as clients may see it (no private part, fresh media URLs). */
  toClient: (line: string) => string;
  /**
   * Clustered: brings the chat's events to this node before they are read (the
   * node follows the chat, caught up from its Redis stream and the durable
   * history), so every node answers with the same messages, not only the ones
   * that happened to mirror the chat.
   */
  gather?: (chatId: string) => Promise<void>;
}

const KEY_PREFIX = "websocket:";
const KEY_PATTERN = /^[A-Za-z0-9_:.-]{1,128}$/;
const MAX_TITLE_CHARS = 200;

const keyOf = (chatId: string) => KEY_PREFIX + chatId;
const iso = (d: Date) => d.toISOString();

type Lookup = { ok: true; chat: SessionRow } | { ok: false; response: Response };

async function lookup(c: Context, directory: SessionDirectory): Promise<Lookup> {
  const key = c.req.param("key") ?? "";
  if (!KEY_PATTERN.test(key)) return { ok: false, response: refusal(400, "Bad Request", "invalid session key") };
  const chatId = key.slice(KEY_PREFIX.length);
  const chat = key.startsWith(KEY_PREFIX) && isChatId(chatId) ? await directory.get(chatId) : undefined;
  return chat ? { ok: true, chat } : { ok: false, response: refusal(404, "Not Found", "session not found") };
}

/** The chat's events as clients may see them, through a seq when given. */
async function visibleEvents(deps: SessionsDeps, chatId: string, through?: number): Promise<Record<string, unknown>[]> {
  await deps.gather?.(chatId);
  const events: Record<string, unknown>[] = [];
  for await (const line of deps.reader.read(chatId, { visible: true, through })) events.push(JSON.parse(deps.toClient(line)));
  return events;
}

export function sessionsApp(deps: SessionsDeps): Hono {
  const { directory, runs } = deps;
  const app = new Hono();
  const row = (chat: SessionRow) => ({
    key: keyOf(chat.id),
    created_at: iso(chat.createdAt),
    updated_at: iso(chat.updatedAt),
    title: chat.title,
    preview: chat.preview,
    ...(runs.activeTurn(chat.id) && { run_started_at: runs.activeTurn(chat.id)!.startedAt }),
    ...(chat.metadata.workspace_scope !== undefined && { workspace_scope: chat.metadata.workspace_scope }),
  });

  app.get("/", async (c) => c.json({ sessions: (await directory.list()).map(row) }));

  app.get("/:key/messages", async (c) => {
    const found = await lookup(c, directory);
    if (!found.ok) return found.response;
    const { chat } = found;
    const thread = foldThread(await visibleEvents(deps, chat.id));
    const messages = thread.filter((m) => m.role !== "tool").map((m) => ({ role: m.role, content: m.content }));
    return c.json({ key: keyOf(chat.id), created_at: iso(chat.createdAt), updated_at: iso(chat.updatedAt), metadata: chat.metadata, messages });
  });

  /*
   * While a turn runs, the thread stops at that turn's user message and says so in
   * `running` (additive): the partial reply belongs to the live stream. A client that
   * swapped its live view for a snapshot holding half a reply would lose the chunks
   * arriving during the swap (nanobot answers with the partial text; we do not).
   * `running.since_seq` is where `attach` resumes to get that reply from its start.
   */
  app.get("/:key/webui-thread", async (c) => {
    const found = await lookup(c, directory);
    if (!found.ok) return found.response;
    const chatId = found.chat.id;
    const turn = runs.activeTurn(chatId);
    const messages = foldThread(await visibleEvents(deps, chatId, turn?.userSeq));
    // nanobot's WebUI shows a 404 as an empty thread.
    if (messages.length === 0) return refusal(404, "Not Found", "webui thread not found");
    const running = turn && { turn_id: turn.turnId, started_at: turn.startedAt, since_seq: turn.userSeq };
    return c.json({ schemaVersion: 3, sessionKey: keyOf(chatId), messages, workspace_scope: found.chat.metadata.workspace_scope ?? null, ...(running && { running }) });
  });

  app.on(["GET", "POST", "DELETE"], "/:key/delete", async (c) => {
    const found = await lookup(c, directory);
    if (!found.ok) return found.response;
    await directory.delete(found.chat.id);
    return c.json({ deleted: true });
  });

  app.on(["GET", "POST"], "/:key/rename", async (c) => {
    const found = await lookup(c, directory);
    if (!found.ok) return found.response;
    const body = c.req.method === "POST" && c.req.header("content-type")?.includes("json") ? await c.req.json().catch(() => ({})) : {};
    const title = String(c.req.query("title") ?? (body as { title?: unknown }).title ?? "").trim();
    if (title === "" || title.length > MAX_TITLE_CHARS) return refusal(400, "Bad Request", `title must be 1 to ${MAX_TITLE_CHARS} characters`);
    await directory.rename(found.chat.id, title);
    return c.json({ key: keyOf(found.chat.id), title });
  });

  return app;
}
