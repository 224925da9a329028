/**
 * IP addresses as the network stack reads them, not as strings: `0`, `0x0`,
 * `000.000.000.000`, `::0` and `0:0:0:0:0:0:0:0` all bind every interface, and
 * `127.1` is loopback. The WHATWG URL host parser applies the same rules as
 * the resolver Bun binds with (inet_aton forms, IPv6 compression), so it gives
 * one canonical spelling to classify.
 */

// node:net is loaded on first use, not imported: loading it costs start-up time (issue #16)
// before the listeners bind, where the bind address is classified.
import { nodeNet } from "../lazy-node.ts";

/** The canonical host: `0.0.0.0`, `::1` (no brackets), `localhost`; undefined if it is no valid host. */
export function canonicalHost(host: string): string | undefined {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const zoneless = bare.replace(/%.*$/, "");
  // Every IPv6 address has a colon: the bind address is classified at start-up without loading node:net.
  const ipv6 = zoneless.includes(":") && nodeNet().isIPv6(zoneless);
  const parsed = URL.parse(`http://${ipv6 ? `[${zoneless}]` : zoneless}/`);
  if (!parsed) return undefined;
  return parsed.hostname.replace(/^\[(.*)\]$/, "$1");
}

/** IPv4 addresses mapped into IPv6 (`::ffff:7f00:1`) are read as the IPv4 address they carry. */
function unmapped(canonical: string): string {
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (!m) return canonical.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");
  const [hi, lo] = [Number.parseInt(m[1]!, 16), Number.parseInt(m[2]!, 16)];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** 0.0.0.0 or :: in any spelling: every interface. */
export function isUnspecified(host: string): boolean {
  const c = canonicalHost(host);
  return c === "0.0.0.0" || c === "::";
}

/** 127/8, ::1 (also IPv4-mapped), or the name localhost. */
export function isLoopback(host: string): boolean {
  const c = canonicalHost(host);
  if (c === undefined) return false;
  const ip = unmapped(c);
  return ip === "localhost" || ip === "::1" || /^127\.\d+\.\d+\.\d+$/.test(ip);
}

/** An address in the form the block list and comparisons use: canonical and unmapped. */
export function normalizedIp(address: string): string {
  const c = canonicalHost(address);
  return c === undefined ? address : unmapped(c);
}

/** A set of addresses and CIDR ranges (`10.0.0.0/8`, `::1`, `fd00::/8`). Throws on an entry that is neither. */
export class AddressSet {
  readonly #list = new (nodeNet().BlockList)();
  readonly size: number;

  constructor(entries: string[]) {
    for (const entry of entries) {
      const [ip = "", prefix] = entry.trim().split("/");
      const address = normalizedIp(ip);
      const family = nodeNet().isIPv6(address) ? "ipv6" : "ipv4";
      if (!/^[\d.]+$/.test(address) && family === "ipv4") throw new Error(`not an IP address or CIDR: ${entry}`);
      if (prefix === undefined) this.#list.addAddress(address, family);
      else this.#list.addSubnet(address, Number(prefix), family);
    }
    this.size = entries.length;
  }

  /** Is this address in the set? Anything that is not an IP address is not. */
  has(address: string): boolean {
    const ip = normalizedIp(address);
    if (!nodeNet().isIP(ip)) return false;
    return this.#list.check(ip, nodeNet().isIPv6(ip) ? "ipv6" : "ipv4");
  }
}
