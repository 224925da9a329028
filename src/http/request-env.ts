/**
 * What the listener knows about a request and the routes need: who the peer is
 * (auth/peer.ts) and which port answered. Passed to the Hono app as its env.
 */
import type { Peer } from "../auth/peer.ts";

export interface RequestEnv {
  peer: Peer;
  /** The port of the listener that answered (undefined on the unix socket). */
  port: number | undefined;
}

export const peerOf = (env: unknown): Peer => (env as RequestEnv).peer;
