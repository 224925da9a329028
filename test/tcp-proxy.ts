/**
 * A real TCP proxy on 127.0.0.1 for tests that need the network between a
 * client and the gateway to fail: every accepted connection is piped to the
 * target port byte for byte (with backpressure), and the test can `cut()` every
 * proxied connection, `refuse` new ones (reset as they arrive, like a dropped
 * network), or turn the open ones into a `blackhole()` (every byte either way is
 * lost and neither end hears a close, like a machine asleep or a pulled cable,
 * until `cut()` resets them). Stopped after the test by onCleanup.
 */
import type { Socket } from "bun";
import { onCleanup } from "./cleanup.ts";

/** One side of a proxied connection: the socket, its peer, and bytes waiting for the socket to drain. */
interface End {
  socket?: Socket<End>;
  peer?: End;
  outbox: Uint8Array[];
  /** This end is the proxy's connection to the target. */
  target?: boolean;
}

function send(to: End, bytes: Uint8Array): void {
  if (!to.socket || to.outbox.length > 0) return void to.outbox.push(bytes.slice());
  const written = to.socket.write(bytes);
  if (written < bytes.length) to.outbox.push(bytes.slice(written));
}

function flush(end: End): void {
  while (end.socket && end.outbox.length > 0) {
    const bytes = end.outbox[0]!;
    const written = end.socket.write(bytes);
    if (written < bytes.length) return void (end.outbox[0] = bytes.slice(written));
    end.outbox.shift();
  }
}

export class TcpProxy {
  refuse = false;
  /** Connections accepted and proxied, and connections reset on arrival while `refuse` was set. */
  accepted = 0;
  refused = 0;
  /** How many of the proxy's connections to the target have closed, for whatever reason (the client may not have heard). */
  targetClosed = 0;
  readonly #ends = new Set<End>();
  /** The connections of a blackhole(): their bytes and closes go nowhere. */
  readonly #lost = new Set<End>();
  readonly #listener;

  constructor(readonly targetPort: number) {
    const handlers = this.#handlers();
    this.#listener = Bun.listen<End>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        ...handlers,
        open: (client) => {
          if (this.refuse) return void (this.refused++, client.terminate());
          this.accepted++;
          const near: End = { socket: client, outbox: [] };
          const far: End = { peer: near, outbox: [], target: true };
          near.peer = far;
          client.data = near;
          this.#ends.add(near).add(far);
          Bun.connect<End>({ hostname: "127.0.0.1", port: targetPort, data: far, socket: { ...handlers, open: (upstream) => ((far.socket = upstream), flush(far)) } }).catch(() => client.terminate());
        },
      },
    });
    onCleanup(() => this.stop());
  }

  get port(): number {
    return this.#listener.port;
  }

  /** Resets every proxied connection at once (both sides see the connection die). */
  cut(): void {
    const ends = [...this.#ends];
    this.#ends.clear();
    this.#lost.clear();
    for (const end of ends) end.socket?.terminate();
  }

  /** From now on the open connections carry nothing and report no close; new connections are not affected. */
  blackhole(): void {
    for (const end of this.#ends) this.#lost.add(end);
  }

  stop(): void {
    this.cut();
    this.#listener.stop(true);
  }

  #handlers() {
    const forget = (end: End | undefined) => {
      if (!end) return; // a refused connection, never proxied
      if (end.target) this.targetClosed++;
      end.socket = undefined;
      const peer = end.peer;
      if (!this.#ends.delete(end) || this.#lost.has(end)) return;
      if (peer?.socket && this.#ends.has(peer)) peer.socket.end();
    };
    return {
      data: (socket: Socket<End>, bytes: Uint8Array) => {
        if (!this.#lost.has(socket.data)) send(socket.data.peer!, bytes);
      },
      drain: (socket: Socket<End>) => flush(socket.data),
      close: (socket: Socket<End>) => forget(socket.data),
      error: (socket: Socket<End>) => forget(socket.data),
    };
  }
}
