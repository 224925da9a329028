/**
 * WebSocket close codes the gateway sends to clients, beyond the standard ones
 * (1001 going away at shutdown, 1009 frame too big). Application codes live in
 * 4000–4999 (RFC 6455 §7.4.2); each is part of the client protocol (README).
 */

/**
 * The client stopped reading: more than `slow_consumer_bytes` were queued for it.
 * Nothing was dropped; the client reconnects and sends `attach {chat_id, since_seq}`
 * with the last seq it saw in each chat, and gets every later event.
 */
export const CLOSE_SLOW_CONSUMER = 4001;
export const SLOW_CONSUMER_REASON = "slow_consumer: reconnect and attach with since_seq";
