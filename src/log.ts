/**
 * A tiny leveled logger writing one line per record to stderr, so stdout stays
 * free for what a user asked for (URLs, tokens from `agentgate token`).
 * Never pass secrets as fields: nothing here redacts.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

function format(level: LogLevel, msg: string, fields?: Fields): string {
  let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}`;
  if (fields) {
    for (const [k, v] of Object.entries(fields)) line += ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`;
  }
  return line + "\n";
}

export function createLogger(minLevel: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const at = (level: LogLevel) =>
    RANK[level] < RANK[minLevel] ? () => {} : (msg: string, fields?: Fields) => write(format(level, msg, fields));
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
