/**
 * `agentgate check-config`: the merged config validates (resolving it already
 * did), every stdio agent's program can be found, and the result is printed
 * with secrets masked.
 */
import { stdioCommandProblem } from "../agents/spawnable.ts";
import { type Config, ConfigError, redactConfig } from "../config.ts";

function checkAgentCommands(config: Config): void {
  for (const [name, spec] of Object.entries(config.agents)) {
    const problem = spec.type === "stdio" ? stdioCommandProblem(spec) : undefined;
    if (problem) throw new ConfigError(`invalid config: agents.${name}.command: ${problem}`);
  }
}

export async function checkConfig(config: Config): Promise<void> {
  checkAgentCommands(config);
  process.stdout.write(`config ok\n${JSON.stringify(redactConfig(config), null, 2)}\n`);
}
