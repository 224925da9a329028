/**
 * A chat's hot history in Redis: a capped stream whose entry ids are the events'
 * seqs (`<seq>-0`), appended only by the lease holder. With a durable archive
 * (archiver.ts) the stream drops only what the archive holds, so history is
 * never in neither.
 *
 * `append` is one fenced script per commit batch: it checks the caller's lease,
 * refuses a batch that does not continue past the last seq ever appended (a
 * takeover numbers past anything published), XADDs each event (the stored line,
 * and the client frame when it differs: an event's `private` part is for
 * storage only), records the last seq and PUBLISHes the batch's client frames
 * on the chat's channel. Durable before visible: a node reveals a batch only
 * after this script has returned, and followers on other nodes learn of it
 * only from the PUBLISH inside it.
 */
import type { RedisClient } from "bun";
import type { ClusterKeys } from "./keys.ts";
import type { Fence } from "./lease.ts";
import { FENCE_CHECK, FencedError, isFenced, LuaScript, SeqBehindError } from "./lua.ts";

/** One event as appended and as read back. */
export interface LoggedEvent {
  seq: number;
  /** The stored line (may hold the event's private part). */
  stored: string;
  /** What clients receive; the stored line when it has no private part. */
  frame: string;
}

/** What a batch's PUBLISH carries (built by APPEND): its first seq, then one client frame per line (JSON never holds a raw newline). */
export function decodeNotice(text: string): { first: number; frames: string[] } {
  const lines = text.split("\n");
  return { first: Number(lines[0]), frames: lines.slice(1) };
}

/**
 * Lua: trims the stream below `floor` = the newest `cap` seqs, but with an
 * archive (maxBehind not '') never past what the archive holds unless more
 * than `maxBehind` events wait for it (a long PostgreSQL outage: Redis memory
 * wins, the gap is logged by whoever reads it). MINID with `~` removes only
 * whole stream nodes: every seq from `floor` on stays.
 */
const TRIM = `local function trim(stream, archivedKey, last, cap, maxBehind)
  local floor = last - tonumber(cap) + 1
  if maxBehind ~= '' then
    local archived = tonumber(redis.call('GET', archivedKey) or '0')
    floor = math.min(floor, math.max(archived + 1, last - tonumber(maxBehind) + 1))
  end
  if floor > 1 then redis.call('XTRIM', stream, 'MINID', '~', floor .. '-0') end
end
`;

/**
 * KEYS: lease, stream, last seq, archived, appender. ARGV: token, cap,
 * channel, max behind ('' without an archive), then per event seq, stored,
 * frame ('' when the same as stored). Checks come before any write: a Lua
 * script that fails half-way is not rolled back.
 *
 * Idempotent for a retried batch: an append the writer stopped waiting for
 * (cluster_redis_command_timeout_ms) may still have run, and the retry sends
 * the same events again ahead of newer ones. Leading events at or below the
 * last seq are skipped when the stream holds them with the same stored line,
 * or when the stream has trimmed them and this same lease appended them (the
 * appender key holds the token of the lease that appended last, the last seq
 * before its first append and the last seq it appended). A seq held with other
 * content, or trimmed and not this lease's, is refused as SEQ_BEHIND. Only the new events are added and published.
 * A batch whose seqs do not each follow the one before is refused as
 * SEQ_BEHIND before anything is written: the writer's numbering went back (a
 * disown) behind events it still had queued, and writing part of it would
 * leave the stream ahead of its last seq.
 */
const APPEND = new LuaScript(`${FENCE_CHECK}${TRIM}local last = tonumber(redis.call('GET', KEYS[3]) or '0')
local token, since, through = string.match(redis.call('GET', KEYS[5]) or '', '^(.*) (%d+) (%d+)$')
if token ~= ARGV[1] then since = last through = last end
since = tonumber(since)
through = tonumber(through)
for i = 8, #ARGV, 3 do
  if tonumber(ARGV[i]) ~= tonumber(ARGV[i - 3]) + 1 then return redis.error_reply('SEQ_BEHIND ' .. last) end
end
local first = #ARGV + 1
for i = 5, #ARGV, 3 do
  local s = tonumber(ARGV[i])
  if s > last then first = i break end
  local held = redis.call('XRANGE', KEYS[2], ARGV[i] .. '-0', ARGV[i] .. '-0')
  if #held == 0 then
    if s <= since or s > through then return redis.error_reply('SEQ_BEHIND ' .. last) end
  elseif held[1][2][2] ~= ARGV[i + 1] then return redis.error_reply('SEQ_BEHIND ' .. last) end
end
if first > #ARGV then return last end
local notice = { ARGV[first] }
local seq
for i = first, #ARGV, 3 do
  seq = ARGV[i]
  if ARGV[i + 2] == '' then
    redis.call('XADD', KEYS[2], seq .. '-0', 's', ARGV[i + 1])
    notice[#notice + 1] = ARGV[i + 1]
  else
    redis.call('XADD', KEYS[2], seq .. '-0', 's', ARGV[i + 1], 'f', ARGV[i + 2])
    notice[#notice + 1] = ARGV[i + 2]
  end
end
redis.call('SET', KEYS[3], seq)
redis.call('SET', KEYS[5], ARGV[1] .. ' ' .. since .. ' ' .. seq)
trim(KEYS[2], KEYS[4], tonumber(seq), ARGV[2], ARGV[4])
redis.call('PUBLISH', ARGV[3], table.concat(notice, '\\n'))
return seq`);

/**
 * KEYS: archived, stream, last seq. ARGV: through, cap, max behind. Raises
 * the archived mark (never lowers it: nodes archive concurrently after a
 * takeover) and trims what it frees. Not fenced: any node that has written
 * events to the archive may say so.
 */
const ARCHIVED = new LuaScript(`${TRIM}local through = tonumber(ARGV[1])
if through > tonumber(redis.call('GET', KEYS[1]) or '0') then redis.call('SET', KEYS[1], through) end
trim(KEYS[2], KEYS[1], tonumber(redis.call('GET', KEYS[3]) or '0'), ARGV[2], ARGV[3])
return 0`);

export class ClusterEventLog {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ClusterKeys,
    /** Entries kept per chat stream (approximate trim). */
    private readonly cap: number,
    /** With a durable archive: most events the stream keeps that the archive has not taken yet (cluster_archive_max_behind_events). */
    private readonly maxBehind?: number,
  ) {}

  /** Appends a batch (seqs ascending) as the lease holder; throws FencedError when the lease is lost. */
  async append(fence: Fence, events: readonly LoggedEvent[]): Promise<void> {
    if (events.length === 0) return;
    const { chatId } = fence;
    const args = [fence.token, String(this.cap), this.keys.channel(chatId), this.maxBehind === undefined ? "" : String(this.maxBehind)];
    for (const e of events) args.push(String(e.seq), e.stored, e.frame === e.stored ? "" : e.frame);
    try {
      const { keys } = this;
      await APPEND.run(this.redis, [keys.owner(chatId), keys.stream(chatId), keys.lastSeq(chatId), keys.archived(chatId), keys.appender(chatId)], args);
    } catch (e) {
      if (isFenced(e)) throw new FencedError(chatId);
      const behind = /SEQ_BEHIND (\d+)/.exec(String((e as Error).message));
      if (behind) throw new SeqBehindError(chatId, Number(behind[1]));
      throw e;
    }
  }

  /** Events with seq > `afterSeq`, oldest first, at most `count`; the stream may have trimmed older ones. */
  async after(chatId: string, afterSeq: number, count: number): Promise<LoggedEvent[]> {
    const entries = (await this.redis.send("XRANGE", [this.keys.stream(chatId), `(${afterSeq}-0`, "+", "COUNT", String(count)])) as [string, string[]][];
    return entries.map(([id, fields]) => toEvent(id, fields));
  }

  /** The seq through which the archive holds the chat's events (0 when none). */
  async archivedThrough(chatId: string): Promise<number> {
    return Number((await this.redis.get(this.keys.archived(chatId))) ?? 0);
  }

  /** The archive holds the chat's events through `through`: the stream may drop them (only with an archive). */
  async markArchived(chatId: string, through: number): Promise<void> {
    const { keys } = this;
    await ARCHIVED.run(this.redis, [keys.archived(chatId), keys.stream(chatId), keys.lastSeq(chatId)], [String(through), String(this.cap), String(this.maxBehind)]);
  }

  /** The last seq ever appended for the chat (0 when none). */
  async lastSeq(chatId: string): Promise<number> {
    return Number((await this.redis.get(this.keys.lastSeq(chatId))) ?? 0);
  }
}

const seqOfId = (id: string) => Number(id.slice(0, id.indexOf("-")));

function toEvent(id: string, fields: string[]): LoggedEvent {
  let stored = "";
  let frame: string | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === "s") stored = fields[i + 1]!;
    else if (fields[i] === "f") frame = fields[i + 1];
  }
  return { seq: seqOfId(id), stored, frame: frame ?? stored };
}
