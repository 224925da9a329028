/**
 * `agentgate check-config`: the merged config validates (resolving it already
 * did), every stdio agent's program can be found, and the result is printed
 * with secrets masked.
 */
import { checkAgentCommands } from "../agents/spawnable.ts";
import { type Config, redactConfig } from "../config.ts";

export async function checkConfig(config: Config): Promise<void> {
  checkAgentCommands(config);
  process.stdout.write(`config ok\n${JSON.stringify(redactConfig(config), null, 2)}\n`);
}
