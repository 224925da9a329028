/**
 * Config options as command-line flags, and the merge of every config source:
 * defaults < --config FILE (or AGENTGATE_CONFIG) < env AGENTGATE_<OPTION> < flags.
 *
 * Start-up time (issue #16): the flags and the usual config come from the option
 * catalog the build embeds, without loading zod; any value that is not plain is
 * decided by the schema itself (config-rules.ts says which).
 */
import type { Config } from "../config.ts";
import { type CatalogOption, resolvePlainConfig } from "../config-rules.ts";
import { ignoredKeyWarning, mergeSources, RETIRED_OPTIONS, readConfigFile, readEnv } from "../config-sources.ts";
import type { FlagSpec } from "./args.ts";

/** build.ts derives it from the schema (config.ts configCatalog); from source it is derived here. */
declare const AGENTGATE_CONFIG_CATALOG: CatalogOption[];
const EMBEDDED_CATALOG = typeof AGENTGATE_CONFIG_CATALOG === "object" ? AGENTGATE_CONFIG_CATALOG : undefined;

let builtCatalog: CatalogOption[] | undefined;

/** The embedded catalog, or (from source) the one built from the schema, once per process. */
async function catalog(): Promise<CatalogOption[]> {
  return EMBEDDED_CATALOG ?? (builtCatalog ??= (await import("../config.ts")).configCatalog());
}

const CONFIG_FILE: FlagSpec = { name: "config", value: "FILE", help: "config file, JSON or TOML (also AGENTGATE_CONFIG)" };

/** --config plus one flag per option; boolean options may stand alone. Retired options are still parsed (then ignored with a warning). */
export async function configFlags(): Promise<FlagSpec[]> {
  const options = (await catalog()).map((o) => ({ name: o.name, value: o.check.kind === "switch" ? undefined : "VALUE", help: o.description }));
  const retired = Object.entries(RETIRED_OPTIONS).map(([name, why]) => ({ name, value: "VALUE", help: `retired, ignored: ${why}` }));
  return [CONFIG_FILE, ...options, ...retired];
}

export async function loadConfig(flags: Record<string, string>): Promise<Config> {
  const { config: fileFlag, ...options } = flags;
  const file = fileFlag ?? process.env.AGENTGATE_CONFIG;
  const fromFile = file ? await readConfigFile(file) : {};
  const known = await catalog();
  const { merged, unknownKeys } = mergeSources(known.map((o) => o.name), [fromFile, readEnv(process.env), options]);
  const config = resolvePlainConfig(known, merged) ?? (await import("../config.ts")).validateConfig(merged);
  for (const key of unknownKeys) process.stderr.write(`${ignoredKeyWarning(key)}\n`);
  return config;
}
