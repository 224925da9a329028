#!/usr/bin/env bun
/**
 * The agentgate command line: `agentgate [COMMAND] [--flag=value ...]`, serve by
 * default. Commands live in the table in cli/commands.ts; this file only picks
 * one, parses its flags strictly and runs it. It imports nothing heavy: the
 * config schema loads only for commands that take config, the server only for serve.
 *
 * Output meant for the user goes to stdout; logs and errors go to stderr.
 * A usage mistake exits 2 with one line; invalid config or a failed command exits 1.
 */
import { closest, type FlagSpec, parseFlags, UsageError } from "./cli/args.ts";
import { type Command, type CommandName, COMMANDS, DEFAULT_COMMAND } from "./cli/commands.ts";
import { startupMark } from "./startup-trace.ts";

startupMark("main");

const HELP = new Set(["--help", "-h"]);

function commandNamed(word: string): CommandName {
  if (word in COMMANDS) return word as CommandName;
  const guess = closest(word, Object.keys(COMMANDS));
  throw new UsageError(`unknown command "${word}"${guess ? ` (did you mean ${guess}?)` : ""}; commands: ${Object.keys(COMMANDS).join(", ")}`);
}

/** The command (undefined when none was named: serve, or general help), its flags, and whether help was asked. */
function pickCommand(argv: string[]): { name?: CommandName; rest: string[]; help: boolean } {
  const help = argv.some((a) => HELP.has(a));
  const args = argv.filter((a) => !HELP.has(a));
  const [first, ...rest] = args;
  if (first === "--version" || first === "-v") return { name: "version", rest, help };
  if (first === undefined || first.startsWith("-")) return { rest: args, help };
  if (first === "help") return { name: rest[0] === undefined ? undefined : commandNamed(rest[0]), rest: [], help: true };
  return { name: commandNamed(first), rest, help };
}

async function run(argv: string[]): Promise<void> {
  const { name, rest, help } = pickCommand(argv);
  if (help) return (await import("./cli/help.ts")).printHelp(name);
  const commandName = name ?? DEFAULT_COMMAND;
  const command: Command = COMMANDS[commandName];
  const configFlags: FlagSpec[] = command.takesConfig ? await (await import("./cli/config-flags.ts")).configFlags() : [];
  startupMark("config flags");
  const flags = parseFlags(rest, [...command.flags, ...configFlags], commandName);
  const own = new Set(command.flags.map((f) => f.name));
  const ownFlags = Object.fromEntries(Object.entries(flags).filter(([k]) => own.has(k)));
  const optionFlags = Object.fromEntries(Object.entries(flags).filter(([k]) => !own.has(k)));
  const config = async () => (await import("./cli/config-flags.ts")).loadConfig(optionFlags);
  await command.run({ flags: ownFlags, config });
}

// No top-level await: the bytecode-compiled binary is bundled as CommonJS.
run(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`agentgate: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
