/**
 * One log line when a client connection opens and one when it closes (listener,
 * client_id, duration, close code). Nothing per frame. The open time is kept
 * beside the socket, not in it, so the connection's data shape stays as it is.
 */
import type { Logger } from "../log.ts";
import type { ClientSocket } from "./client-socket.ts";

const openedAt = new WeakMap<ClientSocket, number>();

export function logConnectionOpen(log: Logger, ws: ClientSocket): void {
  openedAt.set(ws, performance.now());
  log.info("client connected", { listener: ws.data.transport, client_id: ws.data.clientId });
}

export function logConnectionClose(log: Logger, ws: ClientSocket, code: number): void {
  const opened = openedAt.get(ws);
  const durationS = opened === undefined ? undefined : Math.round(performance.now() - opened) / 1000;
  log.info("client disconnected", { listener: ws.data.transport, client_id: ws.data.clientId, duration_s: durationS, close_code: code });
}
