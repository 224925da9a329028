/**
 * Config options as command-line flags, and the merge of every config source:
 * defaults < --config FILE (or AGENTGATE_CONFIG) < env AGENTGATE_<OPTION> < flags.
 */
import { type Config, optionFlags, readConfigFile, readEnv, resolveConfig } from "../config.ts";
import type { FlagSpec } from "./args.ts";

const CONFIG_FILE: FlagSpec = { name: "config", value: "FILE", help: "config file, JSON or TOML (also AGENTGATE_CONFIG)" };

/** --config plus one flag per option; boolean options may stand alone. */
export function configFlags(): FlagSpec[] {
  const options = optionFlags().map((o) => ({ name: o.name, value: o.isSwitch ? undefined : "VALUE", help: o.description }));
  return [CONFIG_FILE, ...options];
}

export async function loadConfig(flags: Record<string, string>): Promise<Config> {
  const { config: fileFlag, ...options } = flags;
  const file = fileFlag ?? process.env.AGENTGATE_CONFIG;
  const fromFile = file ? await readConfigFile(file) : {};
  const { config, unknownKeys } = resolveConfig(fromFile, readEnv(process.env), options);
  for (const key of unknownKeys) process.stderr.write(`warning: unknown config option ignored: ${key}\n`);
  return config;
}
