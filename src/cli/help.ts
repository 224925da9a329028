/**
 * Help text: a short overview of the commands, and per command its own flags,
 * examples and the config options it reads, grouped as in the config schema and
 * each with its default and env name.
 */
import pkg from "../../package.json";
import { OPTION_GROUPS, type OptionInfo, optionTable } from "../config.ts";
import { type FlagSpec, flagName } from "./args.ts";
import { type Command, type CommandName, COMMANDS } from "./commands.ts";

const SOURCES = "configuration: defaults < --config FILE (JSON or TOML) or AGENTGATE_CONFIG < env AGENTGATE_<OPTION> < flags";

const flagLine = (f: FlagSpec) => `  ${flagName(f.name)}${f.value ? ` ${f.value}` : ""}\n      ${f.help}`;

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  return [
    `agentgate ${pkg.version}: realtime gateway between AI agents and their clients`,
    "",
    "usage: agentgate [COMMAND] [--option=value ...]   (no command: serve)",
    "",
    "commands:",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.summary}`),
    "",
    "agentgate COMMAND --help shows a command's options and examples; agentgate serve --help lists every config option.",
    SOURCES,
  ].join("\n");
}

function optionLine(o: OptionInfo): string {
  return `  ${flagName(o.name)}  (default ${JSON.stringify(o.default)}; env ${o.env})\n      ${o.description}`;
}

/** Config options by group, limited to `reads` when given. */
function configSection(reads: string[] | undefined): string[] {
  const options = optionTable().filter((o) => reads === undefined || reads.includes(o.name));
  const lines = [SOURCES];
  for (const group of OPTION_GROUPS) {
    const inGroup = options.filter((o) => o.group === group);
    if (inGroup.length > 0) lines.push("", `${group} options:`, ...inGroup.map(optionLine));
  }
  if (reads !== undefined) lines.push("", "(every other config option is accepted too; agentgate serve --help lists them)");
  return lines;
}

function commandHelp(name: CommandName, command: Command): string {
  const usage = [`agentgate ${name}`, ...command.flags.map((f) => `[${flagName(f.name)}${f.value ? ` ${f.value}` : ""}]`)];
  if (command.takesConfig) usage.push("[--config FILE] [--option=value ...]");
  const lines = [`agentgate ${name}: ${command.summary}`, "", `usage: ${usage.join(" ")}`];
  if (command.flags.length > 0) lines.push("", "options:", ...command.flags.map(flagLine));
  lines.push("", "examples:", ...command.examples.map((e) => `  ${e}`));
  if (command.takesConfig) lines.push("", ...configSection(command.reads));
  return lines.join("\n");
}

export function printHelp(name: CommandName | undefined): void {
  process.stdout.write(`${name === undefined ? overview() : commandHelp(name, COMMANDS[name])}\n`);
}
