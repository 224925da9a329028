/**
 * Who is on the other end of a request, and may it have the trust of a local
 * user? One answer for bootstrap, token issue, the WebSocket upgrade and
 * workspace controls. Loopback alone is not enough (DESIGN: "local is not
 * trusted by address alone"):
 *  - a request carrying Forwarded / X-Forwarded-For / X-Real-IP came through a
 *    proxy: unless that proxy is in trusted_proxies it is not local, and if it
 *    is, the client address (and X-Forwarded-Proto) come from its headers;
 *  - the Host must be localhost, 127.0.0.1, [::1] or an allowed_hosts name, so
 *    a DNS-rebinding page cannot borrow loopback trust;
 *  - a browser Origin must be the gateway's own or match allowed_origins.
 */
import { isIP } from "node:net";
import type { Config } from "../config.ts";
import { AddressSet, isLoopback } from "./address.ts";

export interface Peer {
  /** The client's address: the socket peer's, or a trusted proxy's account of it; "" on the unix socket. */
  address: string;
  viaUnixSocket: boolean;
  /** The address (and scheme) came from a trusted proxy's forwarding headers. */
  proxied: boolean;
  /** On this machine (loopback TCP or the 0600 unix socket) with no untrusted forwarding. */
  local: boolean;
  /** The client used TLS: our own listener's, or a trusted proxy says so. */
  https: boolean;
}

type TrustConfig = Pick<Config, "allowed_hosts" | "allowed_origins" | "trusted_proxies" | "ssl_certfile">;

const FORWARDING_HEADERS = ["forwarded", "x-forwarded-for", "x-real-ip"];
const DEFAULT_HOSTS = ["localhost", "127.0.0.1", "[::1]"];
const HOST_HEADER = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/** `for=` values of a Forwarded header, in hop order, unquoted, without ports or brackets. */
function forwardedFor(header: string): string[] {
  return [...header.matchAll(/for=(?:"([^"]*)"|([^;,\s]*))/gi)].map((m) => stripPort(m[1] ?? m[2] ?? ""));
}

function stripPort(hop: string): string {
  const bracketed = /^\[([^\]]*)\]/.exec(hop);
  if (bracketed) return bracketed[1]!;
  return /^[\d.]+:\d+$/.test(hop) ? hop.slice(0, hop.lastIndexOf(":")) : hop;
}

/** What a trusted proxy says the client's scheme was (X-Forwarded-Proto, else Forwarded proto=). */
function forwardedHttps(req: Request): boolean {
  const header = req.headers.get("x-forwarded-proto") ?? /proto=([a-z]+)/i.exec(req.headers.get("forwarded") ?? "")?.[1] ?? "";
  const proto = header.split(",")[0]!.trim().toLowerCase();
  return proto === "https" || proto === "wss";
}

/** A Host header's host name, lower case, IPv6 bracketed; undefined when it is not a plain host[:port]. */
export function hostName(host: string): string | undefined {
  const m = HOST_HEADER.exec(host.trim());
  return m ? m[1]!.toLowerCase().replace(/\.$/, "") : undefined;
}

/** Centrifugo's allowed_origins: glob patterns where `*` matches any run of characters, case-insensitive. */
function globMatcher(patterns: string[]): (origin: string) => boolean {
  const regexes = patterns.map((p) => new RegExp(`^${p.toLowerCase().split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`));
  return (origin) => regexes.some((re) => re.test(origin.toLowerCase()));
}

export class TrustPolicy {
  readonly #proxies: AddressSet;
  readonly #unixProxy: boolean;
  readonly #hosts: Set<string>;
  readonly #originAllowed: (origin: string) => boolean;
  readonly #tls: boolean;

  constructor(config: TrustConfig) {
    this.#unixProxy = config.trusted_proxies.includes("unix");
    this.#proxies = new AddressSet(config.trusted_proxies.filter((p) => p !== "unix"));
    this.#hosts = new Set([...DEFAULT_HOSTS, ...config.allowed_hosts.map((h) => hostName(h) ?? h.toLowerCase())]);
    this.#originAllowed = globMatcher(config.allowed_origins);
    this.#tls = config.ssl_certfile !== "";
  }

  /** The peer of a request; `socketAddress` is undefined on the unix socket. */
  peer(req: Request, socketAddress: string | undefined): Peer {
    const viaUnixSocket = socketAddress === undefined;
    const direct = socketAddress ?? "";
    const fromTrustedProxy = viaUnixSocket ? this.#unixProxy : this.#proxies.has(direct);
    const https = fromTrustedProxy ? forwardedHttps(req) : this.#tls;
    if (!FORWARDING_HEADERS.some((h) => req.headers.has(h))) return { address: direct, viaUnixSocket, proxied: false, local: viaUnixSocket || isLoopback(direct), https };
    if (!fromTrustedProxy) return { address: direct, viaUnixSocket, proxied: false, local: false, https };
    const address = this.#clientBehindProxies(req);
    return { address, viaUnixSocket, proxied: true, local: address !== "" && isLoopback(address), https };
  }

  /**
   * The client behind trusted proxies, from every forwarding header present: a
   * proxy that sets one header passes a client's own copy of another through, so
   * headers that disagree name no client ("", never local).
   */
  #clientBehindProxies(req: Request): string {
    const clients = new Set<string>();
    const forwarded = req.headers.get("forwarded");
    const xff = req.headers.get("x-forwarded-for");
    const realIp = req.headers.get("x-real-ip");
    if (forwarded !== null) clients.add(this.#nearestUntrusted(forwardedFor(forwarded)));
    if (xff !== null) clients.add(this.#nearestUntrusted(xff.split(",").map((s) => stripPort(s.trim()))));
    if (realIp !== null) clients.add(this.#nearestUntrusted([realIp.trim()]));
    return clients.size === 1 ? [...clients][0]! : "";
  }

  /** The nearest hop no trusted proxy vouches for: the rightmost untrusted address of the chain. */
  #nearestUntrusted(chain: string[]): string {
    for (let i = chain.length - 1; i >= 0; i--) {
      const hop = chain[i]!;
      if (i === 0 || !this.#proxies.has(hop)) return isIP(hop) ? hop : "";
    }
    return "";
  }

  /** Why this request may not have a local user's trust; undefined when it may. */
  localRefusal(req: Request, peer: Peer): string | undefined {
    if (!peer.local) return "not a local peer (loopback, the unix socket, or a trusted proxy's loopback client)";
    // A browser cannot reach the unix socket itself, but it can reach a proxy in front of it.
    if (peer.viaUnixSocket && !peer.proxied) return undefined;
    const host = req.headers.get("host");
    if (host === null) return undefined;
    const name = hostName(host);
    return name !== undefined && this.#hosts.has(name) ? undefined : "Host is not an allowed host name (see allowed_hosts)";
  }

  /** Why this request's Origin is refused; undefined for none, the gateway's own, or an allowed one. */
  originRefusal(req: Request): string | undefined {
    const origin = req.headers.get("origin");
    if (origin === null) return undefined;
    const own = URL.parse(origin)?.host;
    const host = req.headers.get("host");
    if (own !== undefined && host !== null && own === host.toLowerCase()) return undefined;
    return this.#originAllowed(origin) ? undefined : "Origin is not allowed (see allowed_origins)";
  }
}
