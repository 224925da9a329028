/**
 * Strict command-line parsing, by table: every flag a command accepts is known
 * up front, and anything else is a usage error (exit 2) naming the closest known
 * name. Flags are `--name=value` or `--name value`; a boolean flag may stand
 * alone (true) or take an explicit true/false. `--some-option` and
 * `--some_option` are the same flag.
 */
export interface FlagSpec {
  /** snake_case, as in the config schema. */
  name: string;
  /** Placeholder shown in help (`FILE`, `SECONDS`); absent for a boolean flag. */
  value?: string;
  help: string;
}

/** A mistake in how the command was typed: exits 2 with one line. */
export class UsageError extends Error {}

const BOOLEAN_WORDS = new Set(["true", "false", "1", "0", "yes", "no", "on", "off"]);

/** Edit distance between two short words (insert, delete, substitute). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** The candidate nearest to `word`, if it is near enough to be a likely typo. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

export const flagName = (name: string) => `--${name.replaceAll("_", "-")}`;

function unknownFlag(raw: string, known: Map<string, FlagSpec>, command: string): UsageError {
  const guess = closest(raw.replaceAll("-", "_"), known.keys());
  const hint = guess ? ` (did you mean ${flagName(guess)}?)` : ` (see agentgate ${command} --help)`;
  return new UsageError(`unknown option ${flagName(raw)} for ${command}${hint}`);
}

/** Parses the arguments after the command name into flag values keyed by snake_case name. */
export function parseFlags(argv: string[], specs: FlagSpec[], command: string): Record<string, string> {
  const known = new Map(specs.map((s) => [s.name, s]));
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--") || arg === "--") throw new UsageError(`unexpected argument "${arg}" for ${command} (options start with --)`);
    const eq = arg.indexOf("=");
    const raw = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = known.get(raw.replaceAll("-", "_"));
    if (!spec) throw unknownFlag(raw, known, command);
    const next = argv[i + 1];
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (spec.value === undefined) value = next !== undefined && BOOLEAN_WORDS.has(next.toLowerCase()) ? argv[++i]! : "true";
    else if (next !== undefined && !next.startsWith("--")) value = argv[++i]!;
    else throw new UsageError(`${flagName(spec.name)} needs a value (${flagName(spec.name)}=${spec.value})`);
    flags[spec.name] = value;
  }
  return flags;
}

/** A boolean flag's value: absent is false. */
export const flagOn = (value: string | undefined) => value !== undefined && ["true", "1", "yes", "on"].includes(value.toLowerCase());
