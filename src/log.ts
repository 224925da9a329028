/**
 * A tiny leveled logger writing one line per record to stderr, so stdout stays
 * free for what a user asked for (URLs, tokens from `agentgate token`).
 * `text` is for people (`time LEVEL msg key=value ...`); `json` is one object per
 * line for log collectors (`{"time","level","msg",...fields}`).
 * Never pass secrets or tokens as fields: nothing here redacts. Records below the
 * level cost one call to an empty function.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

/** A string value is written bare when that stays unambiguous, else quoted as JSON. */
const BARE = /^[^\s"=]+$/;

function text(level: LogLevel, msg: string, fields?: Fields): string {
  let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}`;
  if (fields) {
    for (const [k, v] of Object.entries(fields)) line += ` ${k}=${typeof v === "string" && BARE.test(v) ? v : JSON.stringify(v)}`;
  }
  return line + "\n";
}

function json(level: LogLevel, msg: string, fields?: Fields): string {
  return `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`;
}

export function createLogger(minLevel: LogLevel, format: LogFormat = "text", write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const render = format === "json" ? json : text;
  const at = (level: LogLevel) =>
    RANK[level] < RANK[minLevel] ? () => {} : (msg: string, fields?: Fields) => write(render(level, msg, fields));
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
