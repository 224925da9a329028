/**
 * `agentgate token`: asks the running gateway for an issued token, from the
 * token-issue route when configured, else from /webui/bootstrap (which, without
 * a secret, answers local peers only). Uses the unix socket when the config has one.
 * `agentgate chat` takes a fresh one the same way before every (re)connect.
 */
import type { Config } from "../config.ts";
import { ConfigError } from "../config-sources.ts";
import { type GatewayAddress, gatewayAddress, gatewayFetch } from "./gateway-address.ts";

/** The issuing route's answer; bootstrap adds an API token for the sessions routes. */
export interface IssuedToken {
  token: string;
  expires_in: number;
  api_token?: string;
}

export async function issueToken(config: Config, address: GatewayAddress, ca: string | undefined): Promise<IssuedToken> {
  const route = config.token_issue_path || "/webui/bootstrap";
  const secret = config.token_issue_secret || config.token;
  const res = await gatewayFetch(address, route, { headers: secret ? { authorization: `Bearer ${secret}` } : undefined, ca });
  if (!res.ok) throw new ConfigError(`token: the gateway at ${address.where} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  return (await res.json()) as IssuedToken;
}

export async function mintToken(config: Config, flags: Record<string, string>): Promise<void> {
  const address = gatewayAddress(config, flags.url);
  const { token, expires_in } = await issueToken(config, address, flags.ca);
  process.stdout.write(`${token}\n`);
  process.stderr.write(`single-use, expires in ${expires_in} s; connect: ${address.ws}?token=${token}\n`);
}
