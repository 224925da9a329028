/**
 * Every series agentgate exposes on /metrics: name, help, labels and buckets
 * live here and nowhere else. Counters and histograms are process-wide (one
 * gateway per process in production); each hook below is what the code that
 * sees the thing calls. Children with fixed label sets are bound once at load,
 * so the per-event path adds to a number. Gauges are per gateway and read at
 * scrape time (`gatewayGauges`), so they cost nothing between scrapes.
 *
 * Label values are never secrets: they come from fixed lists here, agent names
 * from the config, or transports; never from a request's token or text.
 */
import { Counter, type CounterChild, Gauge, Histogram, Registry } from "./exposition.ts";

const P = "agentgate_";

/** Seconds: first tokens and write latencies are sub-second, whole turns run for minutes. */
const TTFT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];
const TURN_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];
const WRITE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1];

/** Chat event types (the chatEvent schemas of protocol/events.ts); anything else counts as "other". */
export const EVENT_TYPES = [
  "user", "message", "delta", "stream_end", "reasoning_delta", "reasoning_end", "file_edit", "turn_end",
  "goal_status", "goal_state", "session_updated", "tool_request", "tool_result", "other",
] as const;
export const AUTH_FAILURES = ["origin", "not_allowed", "not_local", "missing_token", "invalid_token", "api_missing", "api_invalid", "agent_token", "issue_secret"] as const;
/** By the refusal's HTTP status: 413 too large, 415 wrong type, anything else malformed. */
export const UPLOAD_REFUSALS = ["too_large", "wrong_type", "malformed"] as const;
export const TOOL_FAILURES = ["deadline_exceeded", "no_capable_client", "device_disconnected", "turn_ended", "error"] as const;
export const STORAGE_FAULTS = ["commit", "transcript", "seq_reserve", "event_too_large", "shared_metadata"] as const;

export const registry = new Registry();
const counter = (name: string, help: string, labels: string[] = []) => registry.register(new Counter(P + name, help, labels));
const histogram = (name: string, help: string, buckets: number[], labels: string[] = []) => registry.register(new Histogram(P + name, help, buckets, labels));

const eventsPublished = counter("events_published_total", "Chat events committed and published, by event type.", ["type"]);
const deliveries = counter(
  "event_deliveries_total",
  "Chat event frames handed to subscribers: per committed batch of a chat, its events times the subscribers of the chat's topic on every listener at that moment.",
);
const slowConsumerCloses = counter("slow_consumer_closes_total", "Client connections closed because they did not read fast enough.");
const replayRequests = counter("replay_requests_total", "Attaches with since_seq that replayed the chat's stream.");
const replayedEvents = counter("replayed_events_total", "Events replayed to attaching clients, by where they were read from.", ["source"]);
const turns = counter("turns_total", "Turns ended, by agent and final status.", ["agent", "status"]);
const ttft = histogram("turn_time_to_first_token_seconds", "Time from a turn's start to its first token (delta, reasoning or message).", TTFT_BUCKETS, ["agent"]);
const turnDuration = histogram("turn_duration_seconds", "Turn duration from start to turn_end.", TURN_BUCKETS, ["agent"]);
const deltas = counter("deltas_total", "Streamed deltas (tokens) from agents; rate() gives tokens per second.", ["agent"]);
const agentRestarts = counter("agent_restarts_total", "Stdio agent processes that exited and are restarted.", ["agent"]);
const agentDisconnects = counter("agent_disconnects_total", "WebSocket agent connections that closed.", ["agent"]);
const toolCalls = counter("tool_calls_total", "Device tool calls settled, by outcome (ok, or the error reason).", ["outcome"]);
const commitWrite = histogram("commit_log_write_seconds", "Group-commit write of one batch to the commit log (fsync included when transcript_fsync=batch).", WRITE_BUCKETS);
const commitBytes = counter("commit_log_write_bytes_total", "Bytes written to the commit log.");
const transcriptWrite = histogram("transcript_write_seconds", "One batch appended to a chat's JSONL transcript.", WRITE_BUCKETS);
const transcriptBytes = counter("transcript_write_bytes_total", "Bytes appended to chat transcripts.");
const uploadBytes = counter("upload_bytes_total", "Bytes of accepted media uploads.");
const uploadRefusals = counter("upload_refusals_total", "Media uploads refused, by reason.", ["reason"]);
const tokensIssued = counter("tokens_issued_total", "Tokens handed out, by route.", ["route"]);
const authFailures = counter("auth_failures_total", "Refused credentials or handshakes, by reason.", ["reason"]);
const storageFaults = counter("storage_faults_total", "Storage operations that failed (retried or refused), by kind.", ["kind"]);

/** Children with a fixed label set, bound once: a plain object lookup on a constant key set, no string building. */
function bound<K extends string>(family: Counter, keys: readonly K[]): Record<K, CounterChild> {
  const children = {} as Record<K, CounterChild>;
  for (const k of keys) children[k] = family.labels(k);
  return children;
}

const byEventType = bound(eventsPublished, EVENT_TYPES) as Record<string, CounterChild | undefined>;
const otherEvent = eventsPublished.labels("other");
const deliveriesAll = deliveries.labels();
const memoryReplayed = replayedEvents.labels("memory");
const diskReplayed = replayedEvents.labels("disk");
const commitWriteAll = commitWrite.labels();
const commitBytesAll = commitBytes.labels();
const transcriptWriteAll = transcriptWrite.labels();
const transcriptBytesAll = transcriptBytes.labels();
const authByReason = bound(authFailures, AUTH_FAILURES);
const uploadByReason = bound(uploadRefusals, UPLOAD_REFUSALS);
const faultByKind = bound(storageFaults, STORAGE_FAULTS);
const toolOk = toolCalls.labels("ok");
const toolError = toolCalls.labels("error");
const toolByReason = bound(toolCalls, TOOL_FAILURES) as Record<string, CounterChild | undefined>;

/** The hooks the gateway's parts call. */
export const metrics = {
  /** `count` committed events of this type. */
  eventPublished(type: string, count: number): void {
    (byEventType[type] ?? otherEvent).inc(count);
  },
  delivered(frames: number): void {
    deliveriesAll.inc(frames);
  },
  slowConsumerClosed: (): void => slowConsumerCloses.labels().inc(),
  replayRequested: (): void => replayRequests.labels().inc(),
  replayed(source: "memory" | "disk", events: number): void {
    (source === "memory" ? memoryReplayed : diskReplayed).inc(events);
  },
  /** Once per turn: the turn's outcome and what the turn publisher measured. */
  turnEnded(agent: string, status: string, durationMs: number, stats: { ttft_ms?: number; deltas: number }): void {
    turns.labels(agent, status).inc();
    turnDuration.labels(agent).observe(durationMs / 1000);
    if (stats.ttft_ms !== undefined) ttft.labels(agent).observe(stats.ttft_ms / 1000);
    deltas.labels(agent).inc(stats.deltas);
  },
  agentRestarted: (agent: string): void => agentRestarts.labels(agent).inc(),
  agentDisconnected: (agent: string): void => agentDisconnects.labels(agent).inc(),
  /** The gateway's own failure reasons are labels; a client's error text is not (it is free text): "error". */
  toolCallSettled(ok: boolean, error: string | undefined): void {
    (ok ? toolOk : (toolByReason[error ?? ""] ?? toolError)).inc();
  },
  commitWritten(seconds: number, bytes: number): void {
    commitWriteAll.observe(seconds);
    commitBytesAll.inc(bytes);
  },
  transcriptWritten(seconds: number, bytes: number): void {
    transcriptWriteAll.observe(seconds);
    transcriptBytesAll.inc(bytes);
  },
  uploaded: (bytes: number): void => uploadBytes.labels().inc(bytes),
  uploadRefused(status: number): void {
    uploadByReason[status === 413 ? "too_large" : status === 415 ? "wrong_type" : "malformed"].inc();
  },
  tokenIssued: (route: "token_issue" | "bootstrap"): void => tokensIssued.labels(route).inc(),
  authFailed: (reason: (typeof AUTH_FAILURES)[number]): void => authByReason[reason].inc(),
  storageFault: (kind: (typeof STORAGE_FAULTS)[number]): void => faultByKind[kind].inc(),
};

/** What a gateway reports at scrape time. */
export interface GaugeSource {
  /** Open WebSocket connections (clients and agents) per listener. */
  connections(): { listener: string; transport: string; open: number }[];
  /** Chats with a turn running. */
  chatsActive(): number;
  /** Chat streams held in memory (replay ring, seq state). */
  chatStreams(): number;
}

/** The per-gateway gauges, read when /metrics is scraped. */
export function gatewayGauges(source: GaugeSource): { names(): string[]; render(): string } {
  const gauges = new Registry();
  const connections = gauges.register(new Gauge(`${P}connections`, "Open WebSocket connections (clients and agents), by listener and transport.", ["listener", "transport"]));
  const chatsActive = gauges.register(new Gauge(`${P}chats_active`, "Chats with a turn running."));
  const chatStreams = gauges.register(new Gauge(`${P}chat_streams`, "Chat streams held in memory."));
  return {
    names: () => gauges.names(),
    render: () => {
      for (const c of source.connections()) connections.labels(c.listener, c.transport).set(c.open);
      chatsActive.labels().set(source.chatsActive());
      chatStreams.labels().set(source.chatStreams());
      return gauges.render();
    },
  };
}

/** Every metric name a scrape can show (the dashboard test checks its queries against these). */
export function metricNames(): string[] {
  const gauges = gatewayGauges({ connections: () => [], chatsActive: () => 0, chatStreams: () => 0 });
  return [...registry.names(), ...gauges.names()];
}
