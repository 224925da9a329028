/**
 * Can a stdio agent's program be started? Its command[0] is a path (relative to
 * the agent's cwd) that must be executable, or a name that must be on the PATH the
 * child will get. Checked by check-config and before serving (a clear error
 * naming the agent instead of a spawn ENOENT), and by /ready.
 */
import type { AgentSpec, Config } from "../config.ts";
import { ConfigError } from "../config-sources.ts";
import { nodeFs, nodePath } from "../lazy-node.ts";

export type StdioSpec = Extract<AgentSpec, { type: "stdio" }>;

/** Why the program cannot be started, or undefined when it can be found. */
export function stdioCommandProblem(spec: StdioSpec): string | undefined {
  const program = spec.command[0]!;
  if (program.includes("/")) {
    // Loaded here: node:fs and node:path cost start-up time (issue #16) that a config without such an agent need not pay.
    const { accessSync, constants } = nodeFs();
    const { resolve } = nodePath();
    const path = resolve(spec.cwd ?? process.cwd(), program);
    try {
      accessSync(path, constants.X_OK);
      return undefined;
    } catch {
      return `${path} does not exist or is not executable`;
    }
  }
  const PATH = spec.env.PATH ?? process.env.PATH ?? "";
  return Bun.which(program, { PATH }) ? undefined : `"${program}" is not on PATH`;
}

/** Throws a ConfigError naming the first stdio agent whose program cannot be found. */
export function checkAgentCommands(config: Pick<Config, "agents">): void {
  for (const [name, spec] of Object.entries(config.agents)) {
    const problem = spec.type === "stdio" ? stdioCommandProblem(spec) : undefined;
    if (problem) throw new ConfigError(`invalid config: agents.${name}.command: ${problem}`);
  }
}
