/**
 * The one configuration schema. Every option is named here with its default,
 * its bounds and the reason for both; `agentgate --help` prints this table.
 *
 * Sources merge as: defaults < config file (JSON or TOML) < env AGENTGATE_* < CLI flags.
 * Option names are snake_case; a config file may also use the camelCase names of
 * nanobot's WebSocketConfig (so an existing `channels.websocket` block can be pasted).
 */
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { z } from "zod";
import { AddressSet } from "./auth/address.ts";
import { type CatalogOption, crossCheck, homePath, normalizePath, type PlainCheck, switchValue } from "./config-rules.ts";
import { ConfigError, envName, mergeSources } from "./config-sources.ts";

export { ConfigError };

// The config is parsed once or twice per process: zod's eval-compiled fast path costs more to
// build (and cannot come from the binary's bytecode cache) than it saves. Measured in bench/startup.ts.
z.config({ jitless: true });

const MiB = 1024 * 1024;

/**
 * Each option built by a helper below, with the check the start-up fast path may apply to it
 * (config-rules.ts); an option with none, or a helper's schema changed further (every zod method
 * returns a new schema), is left to the schema. `written`: a home path's default as written.
 * A WeakMap, not a zod registry: a registry hands a schema's tag to the schemas derived from it
 * (`.refine()`, `.check()`), so the fast path would skip a refinement added later.
 */
const plainChecks = new WeakMap<z.ZodType, { check: PlainCheck; written?: string }>();
const plain = <T extends z.ZodType>(schema: T, check: PlainCheck, written?: string): T => {
  plainChecks.set(schema, { check, written });
  return schema;
};

const bool = (fallback: boolean) => plain(z.preprocess(switchValue, z.boolean().default(fallback)), { kind: "switch" });

/** One `.check()` with all three rules: the same checks as `.int().min().max()`, one schema clone instead of three (start-up time). */
const int = (fallback: number, min: number, max: number) =>
  plain(z.coerce.number().check(z.int(), z.gte(min), z.lte(max)).default(fallback), { kind: "int", min, max });

const text = (fallback: string) => plain(z.string().default(fallback), { kind: "text" });

const oneOf = <const T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) =>
  plain(z.enum(values).default(fallback as never), { kind: "one of", values });

/** A directory the gateway owns; `~` works. */
const homeDirectory = (fallback: string) => plain(z.string().default(fallback).transform(homePath), { kind: "home path" }, fallback);

/** Lists from env/flags: either JSON (`["a","b"]`) or comma-separated (`a,b`). */
const stringList = (fallback: string[]) =>
  z.preprocess((v) => {
    if (typeof v !== "string") return v;
    const s = v.trim();
    if (s.startsWith("[")) {
      try {
        return JSON.parse(s);
      } catch {
        return v;
      }
    }
    return s === "" ? [] : s.split(",").map((x) => x.trim());
  }, z.array(z.string()).default(fallback));

const urlPath = (fallback: string, optional: boolean) =>
  z
    .string()
    .default(fallback)
    .refine((p) => (optional && p === "") || p.startsWith("/"), 'must start with "/"')
    .transform((p) => (p === "" ? p : normalizePath(p)));

/** Structured options may arrive from env or flags as a JSON string. */
const jsonValue = <T extends z.ZodTypeAny>(schema: T) =>
  z.preprocess((v) => {
    if (typeof v !== "string") return v;
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }, schema);

function validProxyEntry(entry: string): boolean {
  if (entry === "unix") return true;
  try {
    return new AddressSet([entry]).size === 1;
  } catch {
    return false;
  }
}

export const AGENT_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * One named agent. Built on first use (z.lazy under `agents`): most configs name no agent, and
 * building these schemas was a fifth of building the whole config schema (start-up time).
 */
const agentSpec = () => z.discriminatedUnion("type", [
  z.object({
    type: z.literal("stdio"),
    command: z.array(z.string()).min(1).describe("argv of the agent process"),
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().optional(),
  }),
  z.object({ type: z.literal("ws") }),
  z.object({
    type: z.literal("openai"),
    base_url: z.string().url(),
    model: z.string().min(1),
    api_key_env: z.string().default("OPENAI_API_KEY"),
    system_prompt: z.string().optional(),
    timeout_ms: z.number().int().min(1000).max(3_600_000).default(300_000),
  }),
]);
export type AgentSpec = z.output<ReturnType<typeof agentSpec>>;

/** The groups --help and genconfig show options in; each option's group is set where the option is defined. */
export const OPTION_GROUPS = ["listen", "auth", "storage", "media", "agents", "limits", "web UI", "cluster", "process"] as const;
export type OptionGroup = (typeof OPTION_GROUPS)[number];
const optionGroups = z.registry<{ group: OptionGroup }>();
/** Each option's help text. A registry rather than `.describe()`, which clones the schema: 77 clones were a third of building it (start-up time). */
const optionDocs = z.registry<{ description: string }>();

/** Tags every option of one section of the schema with its group. */
function section<T extends z.ZodRawShape>(group: OptionGroup, shape: T): T {
  for (const field of Object.values(shape)) optionGroups.add(field, { group });
  return shape;
}


export const ConfigSchema = z
  .object({
    ...section("listen", {
    host: text("127.0.0.1").register(optionDocs, { description: "TCP bind address. Loopback by default: nothing is exposed until asked." }),
    port: int(8765, 0, 65535).register(optionDocs, { description: "TCP port (nanobot's default). 0 picks a free port, which tests use." }),
    tcp_enabled: bool(true).register(optionDocs, { description: "Serve TCP. Turn off to serve only the unix socket (local IPC)." }),
    unix_socket_path: z
      .string()
      .default("")
      .transform(homePath)
      .refine((p) => !p.includes("\0"), "must not contain NUL bytes")
      .refine((p) => p === "" || isAbsolute(p), "unix_socket_path must be an absolute path")
      .register(optionDocs, { description: "Also serve the same protocol on this unix socket (mode 0600). Empty: no unix socket." }),
    path: urlPath("/", false).register(optionDocs, { description: "WebSocket upgrade path. Upgrades elsewhere get 404." }),
    ssl_certfile: text("").register(optionDocs, { description: "TLS certificate (PEM) for wss://. Set together with ssl_keyfile." }),
    ssl_keyfile: text("").register(optionDocs, { description: "TLS private key (PEM) for wss://. Set together with ssl_certfile." }),
    }),

    ...section("auth", {
    token: text("").register(optionDocs, { description: "Static client token accepted as ?token= (compared timing-safe). Empty: none." }),
    token_issue_path: urlPath("", true).register(optionDocs, { description: "HTTP route minting single-use client tokens (GET or POST). Empty: no route." }),
    token_issue_secret: text("").register(optionDocs, { description: "Secret guarding token_issue_path (Bearer or X-Agentgate-Auth). Falls back to token." }),
    token_ttl_s: int(300, 2, 86400).register(optionDocs, { description: "Lifetime of an issued token: short, because it is a bearer credential in a URL (nanobot: 300 s)." }),
    max_outstanding_tokens: int(10000, 1, 1_000_000).register(optionDocs, { description: "Cap on live issued tokens; beyond it the issue route answers 429 so it cannot grow memory unbounded." }),
    websocket_requires_token: bool(true).register(optionDocs, { description: "Reject WebSocket upgrades without a valid token (static, issued or JWT)." }),
    allow_from: stringList(["*"]).register(optionDocs, { description: 'client_id allowlist checked before auth (403). "*" allows all; [] denies all.' }),
    jwt_secret: text("").register(optionDocs, { description: "HS256 secret: a JWT with sub and exp signed with it is accepted as a client token; its sub is the client_id. Empty: JWTs off." }),
    allowed_hosts: stringList([]).register(optionDocs, { description: "Host names (any port) besides localhost, 127.0.0.1 and [::1] under which loopback trust is granted (bootstrap and token issue without a secret, token-less WebSocket). Others get 403: the defence against DNS rebinding." }),
    allowed_origins: stringList([]).register(optionDocs, { description: 'Browser origins (glob patterns, e.g. "https://*.example.com"; "*" allows all) allowed to upgrade or call the HTTP API besides the gateway\'s own. Requests without Origin (native apps, CLIs) are allowed.' }),
    trusted_proxies: stringList([])
      .refine((list) => list.every(validProxyEntry), "entries must be IP addresses, CIDR ranges or \"unix\"")
      .register(optionDocs, { description: 'Reverse proxies (IPs, CIDRs, or "unix" for the unix socket) whose Forwarded / X-Forwarded-* / X-Real-IP headers are believed. From anyone else such headers make a request non-local.' }),
    rate_limit_auth_per_min: int(60, 0, 1_000_000).register(optionDocs, { description: "Token issue and bootstrap requests per client address per minute (a burst of this many, refilled evenly). 0: unlimited." }),
    rate_limit_upload_per_min: int(120, 0, 1_000_000).register(optionDocs, { description: "Media uploads per client address per minute. 0: unlimited." }),
    rate_limit_api_per_min: int(1200, 0, 10_000_000).register(optionDocs, { description: "Other /api requests per client address per minute. 0: unlimited." }),
    }),

    ...section("limits", {
    streaming: bool(true).register(optionDocs, { description: "Stream turns as delta/stream_end. Off: each streamed segment arrives as one message." }),
    max_message_bytes: int(36 * MiB, 1024, 40 * MiB).register(optionDocs, { description: "Largest inbound frame; bigger frames close the socket with 1009 (nanobot's default and bound)." }),
    ping_interval_s: int(20, 5, 300).register(optionDocs, { description: "Protocol-level ping period for idle sockets." }),
    ping_timeout_s: int(20, 5, 300).register(optionDocs, { description: "How long a silent socket survives after a ping before it is closed." }),
    slow_consumer_bytes: int(4 * MiB, 64 * 1024, 512 * MiB).register(optionDocs, { description: "Bytes queued for one client (beyond the kernel's socket buffers) past which it is closed with 4001 and resumes with since_seq: bounds the memory a client that stops reading can hold." }),
    startup_waiting_max: int(256, 0, 100_000).register(optionDocs, { description: "Requests (other than GET /health) that may wait for the gateway to finish starting; beyond, 503 with Retry-After. Bounds what a burst during start-up can hold." }),
    startup_wait_ms: int(10_000, 100, 120_000).register(optionDocs, { description: "How long a request may wait for the gateway to finish starting before it is answered 503 with Retry-After." }),
    slow_consumer_check_ms: int(100, 10, 10_000).register(optionDocs, { description: "How often every client's queued bytes are checked against slow_consumer_bytes." }),
    backpressure_limit_bytes: int(16 * MiB, 64 * 1024, 1024 * MiB).register(optionDocs, { description: "Backstop above slow_consumer_bytes: a socket that outgrows it between two checks is cut at once by Bun (no close frame, 1006); never a silent drop." }),
    max_queued_turns: int(8, 0, 1000).register(optionDocs, { description: "Messages queued behind a chat's running turn; beyond it the client gets chat_busy." }),
    client_msg_id_memory: int(10_000, 0, 1_000_000).register(optionDocs, { description: "Accepted (chat, client_msg_id) pairs kept in the database, across chats, so a resend (also after a restart) is acknowledged instead of run twice; oldest forgotten first. 0: no resend protection." }),
    client_msg_id_max_age_s: int(7 * 86_400, 60, 365 * 86_400).register(optionDocs, { description: "How long an accepted client_msg_id is remembered: longer than any client waits before resending." }),
    stream_image_hold_chars: int(8192, 16, 1_048_576).register(optionDocs, { description: "Longest delta tail held back while it may still become a markdown image (its path is rewritten before anyone sees it); past it the text goes out as is. Above PATH_MAX so any local image path fits." }),
    }),

    ...section("agents", {
    agent: text("echo").register(optionDocs, { description: 'Agent that serves chats by default: "echo" or a name under agents.' }),
    agents: jsonValue(z.record(z.string().regex(AGENT_NAME, "agent names are 1-64 of [A-Za-z0-9_-]"), z.lazy(agentSpec)).default({})).register(optionDocs, { description: 'Named agents: {"name": {"type": "stdio", "command": [...]} | {"type": "ws"} | {"type": "openai", "base_url", "model"}}. From env or a flag, as JSON.' }),
    agent_path: urlPath("/agent", false).register(optionDocs, { description: "WebSocket path agents of type ws connect to (with agent_token)." }),
    agent_token: text("").register(optionDocs, { description: "Credential agents present to connect in (Bearer or ?token=); distinct from client tokens. Required when a ws agent is configured." }),
    agent_hello_timeout_ms: int(15_000, 100, 300_000).register(optionDocs, { description: "How long a connecting agent has to say hello before it is closed." }),
    agent_cancel_grace_ms: int(5000, 0, 300_000).register(optionDocs, { description: "After a cancel, how long an agent has to end the turn before the gateway ends it as cancelled." }),
    agent_reconnect_grace_ms: int(20_000, 0, 600_000).register(optionDocs, { description: "How long the open turns of a disconnected ws agent wait for it to reconnect before ending with agent_disconnected." }),
    agent_start_timeout_ms: int(10_000, 100, 300_000).register(optionDocs, { description: "How long a turn waits for a stdio agent to start (or restart) and say hello." }),
    agent_restart_backoff_ms: int(500, 10, 60_000).register(optionDocs, { description: "First delay before restarting a stdio agent that died; it doubles per failure up to 30 s." }),
    max_agent_frame_bytes: int(8 * MiB, 1024, 64 * MiB).register(optionDocs, { description: "Largest frame (stdio line or WebSocket message) accepted from an agent." }),
    tool_call_timeout_ms: int(60_000, 100, 3_600_000).register(optionDocs, { description: "Default deadline of a device tool call when the agent names none." }),
    tool_disconnect_grace_ms: int(10_000, 0, 600_000).register(optionDocs, { description: "How long a tool call waits for a capable device to come back after the last one disconnected." }),
    echo_chunk_size: int(16, 1, 65536).register(optionDocs, { description: "Echo agent: characters per delta." }),
    echo_repeat: int(1, 1, 1_000_000).register(optionDocs, { description: "Echo agent: the reply is the message repeated this many times (benchmark load)." }),
    echo_delay_ms: int(0, 0, 60_000).register(optionDocs, { description: "Echo agent: pause between deltas. 0: no pacing (it still yields to I/O)." }),
    }),

    ...section("media", {
    media_max_images: int(4, 0, 64).register(optionDocs, { description: "Images one message may carry (nanobot's limit)." }),
    media_max_image_bytes: int(8 * MiB, 1024, 256 * MiB).register(optionDocs, { description: "Largest image, inline or uploaded." }),
    media_max_videos: int(1, 0, 16).register(optionDocs, { description: "Videos one message may carry." }),
    media_max_video_bytes: int(20 * MiB, 1024, 4096 * MiB).register(optionDocs, { description: "Largest video, inline or uploaded." }),
    media_url_ttl_s: int(3600, 60, 30 * 86400).register(optionDocs, { description: "Lifetime of a signed media URL; history and replay re-sign, so this only bounds a leaked link." }),
    media_allowed_roots: stringList([]).register(optionDocs, { description: "Folders (the agents' workspace) whose files agents may publish; files elsewhere are dropped with a warning." }),
    media_max_outbound_bytes: int(100 * MiB, 1024, 4096 * MiB).register(optionDocs, { description: "Largest file an agent may publish into a chat." }),
    media_unclaimed_upload_s: int(86_400, 60, 30 * 86400).register(optionDocs, { description: "Uploads no message referenced are deleted after this long (checked at start)." }),
    }),

    ...section("storage", {
    transcript_flush_ms: int(20, 1, 5000).register(optionDocs, { description: "Longest a committed event waits before it is written to its chat's transcript (it is already durable in the commit log)." }),
    transcript_fsync: oneOf(["batch", "turn", "never"], "turn").register(optionDocs, { description: "Machine-crash safety (a process crash loses nothing either way): fsync the commit log after every batch, when a turn ends, or never (the OS decides)." }),
    transcript_retry_ms: int(1000, 10, 60_000).register(optionDocs, { description: "After a failed write (disk full, I/O error), how long before it is tried again; the events wait in memory, unseen." }),
    storage_max_held_bytes: int(64 * MiB, 1024 * 1024, 4096 * MiB).register(optionDocs, { description: "While writes fail, events wait in memory up to this many bytes; beyond it new events are refused with an error event." }),
    commit_batch_bytes: int(256 * 1024, 4 * 1024, 64 * MiB).register(optionDocs, { description: "Group commit writes the commit log once per event-loop turn, or at once when this many bytes are staged: a loop turn of 1 000 streaming chats otherwise holds MiBs of events in memory until its end (page faults and GC, measured)." }),
    commit_log_segment_bytes: int(64 * MiB, 64 * 1024, 4096 * MiB).register(optionDocs, { description: "The commit log starts a new segment past this size; old segments are deleted once the transcripts hold them." }),
    commit_log_retire_bytes: int(256 * MiB, 0, 64 * 1024 * MiB).register(optionDocs, { description: "Closed commit-log segments are deleted together once they add up to this much. Each deletion first fsyncs every transcript written since the last one (one fsync per chat, ~150 µs of kernel time each), so with many streaming chats deleting every segment at once costs ~0.5 µs per event (measured); a crash replays at most this much plus the open segment at start." }),
    chat_streams_max: int(10_000, 1, 10_000_000).register(optionDocs, { description: "Chats whose stream state (seq, events waiting for commit) stays in memory; beyond it idle ones (no subscriber, no turn, all written) are forgotten, oldest first." }),
    transcript_max_line_bytes: int(8 * MiB, 1024, 64 * MiB).register(optionDocs, { description: "Largest event written to a transcript; a bigger one is refused whole and logged (nanobot's guard)." }),
    transcript_max_open_files: int(2048, 1, 65536).register(optionDocs, { description: "Descriptors transcripts keep open at once: one per active chat (reopening on every batch costs far more than a write; the least recently written chat's are closed first), and one for a chat's seq index once it has one, only while descriptors are spare (else the index is opened per entry)." }),
    replay_buffer_bytes: int(1 * MiB, 16 * 1024, 256 * MiB).register(optionDocs, { description: "A replay pauses until the client drains once this much is queued for it, so resuming never trips the backpressure limit." }),
    sqlite_busy_timeout_ms: int(5000, 0, 600_000).register(optionDocs, { description: "How long a database write waits for a lock held by another process." }),
    model_name: text("").register(optionDocs, { description: "Model name reported to clients at bootstrap. Empty: the agent's own name." }),
    }),

    ...section("web UI", {
    webui_dir: z
      .string()
      .default("")
      .transform(homePath)
      .refine((p) => p === "" || isAbsolute(p), "webui_dir must be an absolute path")
      .refine((p) => p === "" || existsSync(join(p, "index.html")), "webui_dir must contain index.html (a built single-page app)")
      .register(optionDocs, { description: "Serve a built single-page app (e.g. nanobot's WebUI dist/) from this folder at /, with index.html for unknown page paths. Empty: / serves the built-in chat page." }),
    webui_csp: text("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'").register(optionDocs, { description: "Content-Security-Policy sent with the web UI: no inline or foreign script; inline styles allowed because common UI builds emit them." }),
    bootstrap_token_api_access: bool(true).register(optionDocs, { description: "A token minted by /webui/bootstrap for a local browser also works as a Bearer on /api/sessions* and /api/media until it expires (nanobot's WebUI sends it there); still single-use on the WebSocket." }),
    }),

    ...section("cluster", {
    cluster_redis_url: z
      .string()
      .default("")
      .refine((u) => u === "" || /^(redis|rediss|valkey|valkeys):\/\//.test(u), "must be a redis://, rediss://, valkey:// or valkeys:// URL")
      .register(optionDocs, {
        description:
          "Redis shared by several gateways (redis://[user:pass@]host:port[/db]). Empty: a single node, nothing else needed. With it: one writer per chat (a fenced lease), events reach clients on every node and resume from any, client frames and chats-API messages sent to another node are forwarded to the writer, a dead writer is replaced, tokens are accepted once on any node. Metadata is shared when store_postgres_url is set too.",
      }),
    cluster_lease_ms: int(5000, 500, 600_000).register(optionDocs, { description: "A chat's writer lease in Redis, renewed every third of it: a gateway that stops renewing (crashed, paused, cut off) loses the chat after this long, and its writes are refused from then on." }),
    cluster_stream_max_events: int(10_000, 100, 10_000_000).register(optionDocs, { description: "Events kept per chat in its Redis stream (approximately): the hot history any node resumes from. Older events come from the durable history in PostgreSQL with store_postgres_url (the stream keeps what it does not have yet), else from another gateway that holds them." }),
    cluster_idle_ms: int(60_000, 100, 86_400_000).register(optionDocs, { description: "A chat with no turn and no event for this long is let go: its writer releases the lease (any node may take it at its next message), and a node with no client of it drops its subscription." }),
    cluster_redis_max_retries: int(20, 1, 1000).register(optionDocs, { description: "Reconnect attempts Bun's Redis client makes after a connection drops before giving up (20: about 30 s). After it gives up the gateway opens the connection again, backing off up to cluster_redis_reopen_max_ms, and catches up what it missed." }),
    cluster_redis_reopen_max_ms: int(5000, 10, 600_000).register(optionDocs, { description: "Longest wait between two attempts to open again a Redis connection the client gave up on: how soon after Redis is back a node that lost it for long resumes at most." }),
    cluster_history_wait_ms: int(1000, 10, 60_000).register(optionDocs, { description: "How long a node filling a gap its chat's Redis stream no longer holds (and the durable history in PostgreSQL does not, or there is none) waits for another node to hand it those events; past it the gap stays (logged)." }),
    cluster_redis_command_timeout_ms: int(1000, 10, 600_000).register(optionDocs, { description: "How long a writer waits for Redis to answer a chat's append or lease renewal. A Redis that stops answering without closing the connection (paused, overloaded) is otherwise never noticed: past it the append counts as failed (its events stay unseen, are retried and count against storage_max_held_bytes) and a renewal as a possibly lost lease (no append until Redis confirms it). Lease claims and lookups, fan-out subscriptions and stream reads, and forwarded frames fail past it too (answered as a storage error). Well above a healthy round trip, below a third of cluster_lease_ms so a stall is noticed before the lease lapses." }),
    cluster_device_recheck_ms: int(1000, 10, 600_000).register(optionDocs, { description: "While a device tool call waits and the chat's writer has no capable client of its own, how often it looks again (in Redis) for one on another node: a device leaving another node is not announced, so it is noticed within this, then waited for tool_disconnect_grace_ms. A floor on how often Redis is asked per waiting call." }),
    cluster_api_reply_ms: int(10_000, 100, 600_000).register(optionDocs, { description: "How long a chats-API request (POST /api/chats/{id}/messages or /stop) handed to the chat's writer on another node waits for its answer. Past it the answer is 504 outcome_unknown: the writer may still act on it, so the caller reads the chat before sending again. Long enough for a commit under load, short enough for an HTTP client's patience." }),
    cluster_nodes_colocated: bool(false).register(optionDocs, { description: "The cluster's gateways share one machine (one filesystem, one loopback). On: a client its node trusts as local keeps that trust when its frame is forwarded to the chat's writer, so a workspace_scope it sets is checked and resolved there. Off (default): forwarded frames are not local, because a path is resolved on the writer's filesystem, not the one the local user meant, and loopback trust on one machine says nothing about another." }),
    cluster_media_dir: homeDirectory("").register(optionDocs, { description: "A directory every gateway of the cluster mounts (a shared volume, NFS): media files go to its media/ and the URL signing secret is its media-secret, so a signed media URL issued by any gateway is served by every gateway. It must exist (mounted) before the gateway starts: a missing one, or one without the secret while this gateway has stored media there (an empty mount point), stops the start, and /ready fails while it is gone. Empty: <data_dir>, files and secret per gateway." }),
    cluster_key_prefix: z.string().min(1).default("agentgate:").register(optionDocs, { description: "Prefix of every Redis key and channel, so several clusters (or other programs) can share one Redis." }),
    cluster_archive_interval_ms: int(500, 10, 60_000).register(optionDocs, { description: "With store_postgres_url: how often a chat's writer writes the events it appended to the durable history in PostgreSQL, all chats in a few statements (a failed round is written again), never awaited by streaming. Longer: fewer, larger rows and less CPU; the Redis stream keeps every event until it is archived, so nothing is lost either way." }),
    cluster_archive_batch_events: int(1000, 1, 100_000).register(optionDocs, { description: "Most events in one row of the durable history (a run of consecutive seqs, compressed by PostgreSQL when long): bigger rows cost less per event to write, a resume reads whole rows. 16 rows' worth are read back from a chat's Redis stream per interval when the archive catches up after a takeover or an outage." }),
    cluster_archive_max_queued_events: int(100_000, 100, 10_000_000).register(optionDocs, { description: "Events a writer holds in memory for the durable history while PostgreSQL is slow or away. Past it they are dropped from memory and read again from the chats' Redis streams, which keep them until archived." }),
    cluster_archive_max_behind_events: int(1_000_000, 100, 100_000_000).register(optionDocs, { description: "Most events a chat's Redis stream keeps, counted back from its newest, while the durable history does not have them yet (PostgreSQL away for long); at or below cluster_stream_max_events it changes nothing. Bounds Redis memory: past it the oldest are trimmed though not archived, and a resume from before them misses them (logged)." }),
    store_postgres_timeout_ms: int(5000, 10, 600_000).register(optionDocs, { description: "How long a read or write of the durable history in PostgreSQL is waited for. A database that stops answering without closing the connection (stalled host, lock) would otherwise hold a resume (attach) forever: past it the client is answered storage_error and the archive write is retried from the Redis streams. Well above a healthy query, well below a client's patience." }),
    store_postgres_max_pending: int(100_000, 10, 10_000_000).register(optionDocs, { description: "Metadata writes (one per chat change, turn or media row, never per event) kept for PostgreSQL while it is unreachable. Beyond it they are dropped and, once PostgreSQL answers again, this node's SQLite rows are copied to it instead." }),
    store_postgres_url: z
      .string()
      .default("")
      .refine((u) => u === "" || /^(postgres|postgresql):\/\//.test(u), "must be a postgres:// or postgresql:// URL")
      .register(optionDocs, {
        description:
          "PostgreSQL shared by several gateways (postgres://[user:pass@]host:port/db): the metadata of record (chats, turns, media rows), written behind by each node and read by the sessions API, so every node lists, renames and deletes the same chats. Migrations are applied at start. Each node keeps its own SQLite as its local store. Empty: metadata is per node.",
      }),
    }),

    ...section("process", {
    data_dir: homeDirectory("~/.agentgate").register(optionDocs, { description: "Where the gateway keeps its state." }),
    shutdown_grace_ms: int(5000, 0, 120_000).register(optionDocs, { description: "On SIGINT/SIGTERM: how long running turns get to finish before clients are closed." }),
    log_level: oneOf(["debug", "info", "warn", "error"], "info").register(optionDocs, { description: "Least severe log level printed (stderr)." }),
    log_format: oneOf(["text", "json"], "text").register(optionDocs, { description: "Log lines as text (key=value, for people) or JSON objects (one per line, for log collectors)." }),
    metrics_enabled: oneOf(["auto", "on", "off"], "auto").register(optionDocs, { description: "GET /metrics (Prometheus). auto: open on a loopback bind and the unix socket, absent on other binds; on: also on other binds, behind the API credential; off: never." }),
    }),
  })
  .superRefine((c, ctx) => crossCheck(c, (path, message) => ctx.addIssue({ code: "custom", path: [path], message })));

export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

const OPTION_NAMES = Object.keys(ConfigSchema.shape) as (keyof Config)[];

export interface LoadedConfig {
  config: Config;
  /** Keys present in some source that no option matches; the caller warns about them. */
  unknownKeys: string[];
}

/** Merges the sources in precedence order and validates once. Throws ConfigError naming the option. */
export function resolveConfig(...sources: Record<string, unknown>[]): LoadedConfig {
  const { merged, unknownKeys } = mergeSources(OPTION_NAMES, sources);
  return { config: validateConfig(merged), unknownKeys };
}

/** The schema's verdict on merged options (known ones only). Throws ConfigError naming the option. */
export function validateConfig(merged: Record<string, unknown>): Config {
  const result = ConfigSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const option = issue.path.join(".") || "config";
    throw new ConfigError(`invalid config: ${option}: ${issue.message}`);
  }
  return result.data;
}

/** The check the fast path may apply to this schema: only a helper's own schema has one. */
export function plainCheckOf(schema: z.ZodType): { check: PlainCheck; written?: string } | undefined {
  return plainChecks.get(schema);
}

/**
 * Every option with its help, group, plain check and default, in schema order: what the command
 * line needs before the config loads. build.ts embeds it in the binary, so that start-up neither
 * loads zod nor builds this schema for it (config-rules.ts).
 */
export function configCatalog(): CatalogOption[] {
  const defaults = ConfigSchema.parse({});
  return OPTION_NAMES.map((name) => {
    const field = ConfigSchema.shape[name];
    const tagged = plainCheckOf(field);
    return {
      name,
      description: optionDocs.get(field)?.description ?? "",
      group: optionGroups.get(field)?.group ?? "process",
      check: tagged?.check ?? { kind: "schema" },
      default: tagged?.written ?? defaults[name],
    };
  });
}

export interface OptionInfo extends CatalogOption {
  env: string;
}

/** Every option with its env name, in schema order: --help and genconfig are generated from it. */
export function optionTable(): OptionInfo[] {
  return configCatalog().map((o) => ({ ...o, env: envName(o.name) }));
}

/** The config with secrets masked, for check-config and logs. */
export const SECRET_OPTIONS: ReadonlySet<string> = new Set(["token", "token_issue_secret", "jwt_secret", "agent_token", "cluster_redis_url", "store_postgres_url"]);

export function redactConfig(config: Config): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [k, SECRET_OPTIONS.has(k) && v ? "***" : v]),
  );
}
