/**
 * `agentgate gentoken --sub NAME [--ttl SECONDS]`: an HS256 JWT with sub, iat and
 * exp, signed offline with the configured jwt_secret (the gateway accepts it as a
 * client token and as an API credential). No gateway needs to run.
 */
import { sign } from "hono/jwt";
import type { Config } from "../config.ts";
import { ConfigError } from "../config-sources.ts";
import { UsageError } from "./args.ts";

const DEFAULT_TTL_S = 3600;
/** A year: a longer-lived bearer credential should be a deliberate config change, not a flag. */
const MAX_TTL_S = 365 * 86400;

export async function genToken(config: Config, flags: Record<string, string>): Promise<void> {
  const sub = flags.sub?.trim();
  if (!sub) throw new UsageError("gentoken needs --sub NAME (the token's subject)");
  const ttl = flags.ttl === undefined ? DEFAULT_TTL_S : Number(flags.ttl);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_S) throw new UsageError(`--ttl must be whole seconds from 1 to ${MAX_TTL_S}, got "${flags.ttl}"`);
  if (!config.jwt_secret) throw new ConfigError("gentoken: jwt_secret is not set (config file, AGENTGATE_JWT_SECRET or --jwt-secret)");
  const now = Math.floor(Date.now() / 1000);
  const token = await sign({ sub, iat: now, exp: now + ttl }, config.jwt_secret, "HS256");
  process.stdout.write(`${token}\n`);
  process.stderr.write(`sub ${sub}, expires ${new Date((now + ttl) * 1000).toISOString()} (in ${ttl} s)\n`);
}
