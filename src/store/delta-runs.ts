/**
 * Delta runs: consecutive `delta` (or `reasoning_delta`) events of one stream,
 * stored as one transcript line that carries the seq range and the texts:
 *
 *   {"run":"delta","chat_id":"c","stream_id":"7:0","turn_id":"t","seq":8,"through":11,"texts":["a","b","c","d"]}
 *
 * A streamed 4-character delta costs ~100 bytes as its own line and ~7 inside a
 * run. Only events whose fields are exactly the live frame's shape join a run, so
 * expanding one rebuilds each frame byte for byte as clients saw it live:
 * `{"event", "chat_id", "text", "stream_id", ["turn_id",] "seq"}`, in that order.
 */

import { writeUtf8 } from "./buffer-write.ts";
import { MAX_JSON_BYTES_PER_UNIT } from "./utf8-size.ts";

export type RunKind = "delta" | "reasoning_delta";

export interface DeltaRun {
  kind: RunKind;
  chat_id: string;
  stream_id: string;
  turn_id: string | undefined;
  seq: number;
  through: number;
  texts: string[];
  /** The first member's stored line, written as it is when the run stays a run of one. */
  firstLine?: string;
}

export interface DeltaFields {
  event: string;
  chat_id: string;
  text: string;
  stream_id: string;
  turn_id?: string;
  seq: number;
}

const WITH_TURN = ["event", "chat_id", "text", "stream_id", "turn_id", "seq"];
const WITHOUT_TURN = ["event", "chat_id", "text", "stream_id", "seq"];

/** Every run member's stored line starts with one of these (`event` is its first field). */
const DELTA_LINE = '{"event":"delta",';
const REASONING_LINE = '{"event":"reasoning_delta",';

/**
 * The event as a run member, when it may join one (exact live shape, string
 * fields); undefined otherwise. `line` is the event as stored: its prefix turns
 * every other event away before any of its fields is read, so this per-event
 * check only ever reads fields of deltas (one shape) and JSC's optimized code
 * is not thrown away at each stream's end, when events of other shapes pass.
 */
export function runMember(event: object, line: string): DeltaFields | undefined {
  if (!line.startsWith(DELTA_LINE) && !line.startsWith(REASONING_LINE)) return undefined;
  const e = event as Partial<DeltaFields>;
  if (e.event !== "delta" && e.event !== "reasoning_delta") return undefined;
  if (typeof e.text !== "string" || typeof e.chat_id !== "string" || typeof e.stream_id !== "string" || typeof e.seq !== "number") return undefined;
  if (e.turn_id !== undefined && typeof e.turn_id !== "string") return undefined;
  const order = e.turn_id === undefined ? WITHOUT_TURN : WITH_TURN;
  let i = 0;
  for (const key in event) if (key !== order[i++]) return undefined;
  return i === order.length ? (e as DeltaFields) : undefined;
}

/** Whether `e` continues `run`: same kind, stream and turn, next seq. */
export function continues(run: DeltaRun, e: DeltaFields): boolean {
  return e.seq === run.through + 1 && e.event === run.kind && e.stream_id === run.stream_id && e.turn_id === run.turn_id && e.chat_id === run.chat_id;
}

export function startRun(e: DeltaFields, line: string): DeltaRun {
  return { kind: e.event as RunKind, chat_id: e.chat_id, stream_id: e.stream_id, turn_id: e.turn_id, seq: e.seq, through: e.seq, texts: [e.text], firstLine: line };
}

/** Needs JSON escaping, or may (a surrogate: a lone one is escaped): such a text goes through JSON.stringify. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const QUOTE = 0x22;
const COMMA = 0x2c;
/** A run's fields besides its texts, in units: names, punctuation and two seqs. */
const RUN_HEAD_UNITS = 96;

/** Bytes the run's transcript line may take at most (what encodeRunInto needs free in its buffer). */
export function runBytesBound(run: DeltaRun): number {
  let units = RUN_HEAD_UNITS + run.chat_id.length + run.stream_id.length + (run.turn_id?.length ?? 0);
  for (const text of run.texts) units += text.length + 3;
  return units * MAX_JSON_BYTES_PER_UNIT;
}

/**
 * Writes the transcript line of a run of two or more (a run of one is stored as
 * its first line) into `buffer` at `offset`, which has `runBytesBound` bytes
 * free; returns the offset after it. The bytes equal JSON.stringify of the run
 * object, but each text is encoded straight into the buffer: stringifying a long
 * run built its line in a string grown by reallocation, which was most of the
 * gateway's page faults with 1 000 streaming chats (perf record -e page-faults).
 */
export function encodeRunInto(run: DeltaRun, buffer: Buffer, offset: number): number {
  const { kind, chat_id, stream_id, turn_id, seq, through, texts } = run;
  // Every field but the texts (the last), serialized as JSON.stringify would: `...,"texts":0}` less its last two bytes.
  const head = JSON.stringify({ run: kind, chat_id, stream_id, turn_id, seq, through, texts: 0 });
  let o = offset + writeUtf8(buffer, head.slice(0, -2), offset);
  buffer[o++] = 0x5b; // [
  for (let i = 0; i < texts.length; i++) {
    if (i > 0) buffer[o++] = COMMA;
    const text = texts[i]!;
    if (NEEDS_ESCAPE.test(text)) o += writeUtf8(buffer, JSON.stringify(text), o);
    else {
      buffer[o++] = QUOTE;
      o += writeUtf8(buffer, text, o);
      buffer[o++] = QUOTE;
    }
  }
  buffer[o++] = 0x5d; // ]
  buffer[o++] = 0x7d; // }
  return o;
}

/** A parsed transcript line that is a run, or undefined. */
export function asRun(parsed: Record<string, unknown>): DeltaRun | undefined {
  const { run, chat_id, stream_id, turn_id, seq, through, texts } = parsed;
  if (run !== "delta" && run !== "reasoning_delta") return undefined;
  if (typeof chat_id !== "string" || typeof stream_id !== "string" || typeof seq !== "number" || typeof through !== "number") return undefined;
  if (!Array.isArray(texts) || texts.length !== through - seq + 1 || !texts.every((t) => typeof t === "string")) return undefined;
  if (turn_id !== undefined && typeof turn_id !== "string") return undefined;
  return { kind: run, chat_id, stream_id, turn_id, seq, through, texts, firstLine: undefined };
}

/** The live frame of the run's i-th event, fields in the order the hub serialized them. */
function frameAt(run: DeltaRun, i: number): DeltaFields {
  const { kind: event, chat_id, stream_id, turn_id } = run;
  const text = run.texts[i]!;
  const seq = run.seq + i;
  return turn_id === undefined ? { event, chat_id, text, stream_id, seq } : { event, chat_id, text, stream_id, turn_id, seq };
}

/** The frames of a run, each serialized exactly as it was published. */
export function* expandRun(run: DeltaRun): Generator<{ seq: number; line: string }> {
  for (let i = 0; i < run.texts.length; i++) yield { seq: run.seq + i, line: JSON.stringify(frameAt(run, i)) };
}
