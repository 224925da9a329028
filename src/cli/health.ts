/**
 * `agentgate health`: one GET of /health (or /ready) on the running gateway;
 * exit 0 on 200, 1 otherwise with the answer. Meant for Docker's HEALTHCHECK and
 * scripts, where no curl may be at hand.
 */
import type { Config } from "../config.ts";
import { ConfigError } from "../config-sources.ts";
import { flagOn } from "./args.ts";
import { gatewayAddress, gatewayFetch } from "./gateway-address.ts";

export async function probeHealth(config: Config, flags: Record<string, string>): Promise<void> {
  const route = flagOn(flags.ready) ? "/ready" : "/health";
  const address = gatewayAddress(config, flags.url);
  const res = await gatewayFetch(address, route, { ca: flags.ca });
  const body = (await res.text()).slice(0, 1000);
  if (res.status !== 200) throw new ConfigError(`${route} answered ${res.status}: ${body}`);
  process.stdout.write(`${body}\n`);
}
