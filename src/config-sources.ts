/**
 * Where config values come from, before any is validated: a config file (JSON or
 * TOML), env AGENTGATE_*, and their merge, later sources winning. Loads no schema:
 * the start-up path reads its sources with it before deciding whether zod is needed.
 */
import { parseErrorLine } from "./config-file-line.ts";

const ENV_PREFIX = "AGENTGATE_";
/** Env vars the loader reads itself rather than as options. */
const ENV_NON_OPTIONS = new Set(["AGENTGATE_CONFIG", "AGENTGATE_STARTUP_TRACE"]);

/** The env var that sets an option. */
export const envName = (option: string) => ENV_PREFIX + option.toUpperCase();

export class ConfigError extends Error {}

/** `unixSocketPath` → `unix_socket_path`, so nanobot's camelCase config keys are accepted. */
const snakeCase = (key: string) => key.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);

export async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  const handle = Bun.file(file);
  if (!(await handle.exists())) throw new ConfigError(`config: file not found: ${file}`);
  const text = await handle.text();
  let parsed: unknown;
  try {
    parsed = file.endsWith(".toml") ? Bun.TOML.parse(text) : JSON.parse(text);
  } catch (e) {
    const line = parseErrorLine(text, file.endsWith(".toml"));
    throw new ConfigError(`config: cannot parse ${file}${line ? ` at line ${line}` : ""}: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config: ${file} must hold an object`);
  }
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [snakeCase(k), v]));
}

export function readEnv(env: Record<string, string | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || ENV_NON_OPTIONS.has(name) || value === undefined) continue;
    out[name.slice(ENV_PREFIX.length).toLowerCase()] = value;
  }
  return out;
}

/**
 * Options a release removed, with why: still accepted from every source (a flag
 * in a service unit, an env var, a config file key) so an upgrade does not stop
 * a gateway from starting, and ignored with a warning that says what replaced them.
 */
export const RETIRED_OPTIONS: Readonly<Record<string, string>> = {
  replay_ring_events: "no replay ring any more: a resume reads the transcript (page cache) and its queued batch",
  replay_ring_bytes: "no replay ring any more: a resume reads the transcript (page cache) and its queued batch",
  replay_ring_total_bytes: "no replay ring any more: a resume reads the transcript (page cache) and its queued batch",
};

/** The warning for a key no option matches. */
export function ignoredKeyWarning(key: string): string {
  const why = Object.hasOwn(RETIRED_OPTIONS, key) ? RETIRED_OPTIONS[key] : undefined;
  return why ? `warning: retired config option ignored: ${key} (${why})` : `warning: unknown config option ignored: ${key}`;
}

export interface MergedSources {
  /** The known options' values, later sources winning. */
  merged: Record<string, unknown>;
  /** Keys present in some source that no option matches; the caller warns about them. */
  unknownKeys: string[];
}

export function mergeSources(optionNames: readonly string[], sources: Record<string, unknown>[]): MergedSources {
  // No prototype: a "__proto__" key in a config file is an unknown option, not a prototype to inherit options from.
  const merged: Record<string, unknown> = Object.assign(Object.create(null), ...sources);
  const unknownKeys = Object.keys(merged).filter((k) => !optionNames.includes(k));
  for (const k of unknownKeys) delete merged[k];
  return { merged, unknownKeys };
}
