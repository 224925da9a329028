/**
 * Where a client command (token, health) reaches the running gateway: the
 * --url it was given, else the unix socket or TCP address of the same config.
 * Connection failures are reported as they are (refused, TLS certificate
 * errors, …) rather than as a vague "no answer".
 */
import type { Config } from "../config.ts";
import { connectableHost } from "../config-rules.ts";
import { ConfigError } from "../config-sources.ts";
import { UsageError } from "./args.ts";

/** The unix-socket URL form Bun's WebSocket client accepts. */
export const unixWsUrl = (socket: string, path: string) => `ws+unix://${socket}:${path}`;

export interface GatewayAddress {
  /** http(s) base URL requests go to (over the socket when `unix` is set). */
  base: string;
  unix?: string;
  /** Where a client connects its WebSocket. */
  ws: string;
  /** For messages: the socket path or the base URL. */
  where: string;
}

function fromUrl(raw: string, path: string): GatewayAddress {
  const url = URL.parse(raw);
  if (!url || !["http:", "https:", "ws:", "wss:"].includes(url.protocol)) throw new UsageError(`--url must be an http(s):// or ws(s):// URL, got "${raw}"`);
  const secure = url.protocol === "https:" || url.protocol === "wss:";
  const base = `${secure ? "https" : "http"}://${url.host}`;
  return { base, ws: `${secure ? "wss" : "ws"}://${url.host}${path}`, where: base };
}

export function gatewayAddress(config: Config, url: string | undefined): GatewayAddress {
  if (url !== undefined) return fromUrl(url, config.path);
  if (config.unix_socket_path) {
    const socket = config.unix_socket_path;
    return { base: "http://localhost", unix: socket, ws: unixWsUrl(socket, config.path), where: socket };
  }
  const secure = config.ssl_certfile !== "";
  const hostPort = `${connectableHost(config)}:${config.port}`;
  const base = `${secure ? "https" : "http"}://${hostPort}`;
  return { base, ws: `${secure ? "wss" : "ws"}://${hostPort}${config.path}`, where: base };
}

/** fetch() against the gateway; a failure names the address and the real cause (code and message). */
export async function gatewayFetch(address: GatewayAddress, route: string, init: { headers?: Record<string, string>; ca?: string }): Promise<Response> {
  const tls = init.ca ? { ca: await Bun.file(init.ca).text() } : undefined;
  try {
    return await fetch(address.base + route, { headers: init.headers, ...(address.unix && { unix: address.unix }), ...(tls && { tls }) });
  } catch (e) {
    const err = e as Error & { code?: string };
    const cause = err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
    throw new ConfigError(`cannot reach the gateway at ${address.where}: ${cause}`);
  }
}
