/**
 * `agentgate token`: asks the running gateway for an issued token, from the
 * token-issue route when configured, else from /webui/bootstrap (which, without
 * a secret, answers local peers only). Uses the unix socket when the config has one.
 */
import { type Config, ConfigError } from "../config.ts";
import { gatewayAddress, gatewayFetch } from "./gateway-address.ts";

export async function mintToken(config: Config, flags: Record<string, string>): Promise<void> {
  const route = config.token_issue_path || "/webui/bootstrap";
  const secret = config.token_issue_secret || config.token;
  const address = gatewayAddress(config, flags.url);
  const res = await gatewayFetch(address, route, { headers: secret ? { authorization: `Bearer ${secret}` } : undefined, ca: flags.ca });
  if (!res.ok) throw new ConfigError(`token: the gateway at ${address.where} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  const { token, expires_in } = (await res.json()) as { token: string; expires_in: number };
  process.stdout.write(`${token}\n`);
  process.stderr.write(`single-use, expires in ${expires_in} s; connect: ${address.ws}?token=${token}\n`);
}
