/**
 * The socket underneath a client: opens it with a fresh token, and when it
 * closes decides from the close-code table whether to reconnect at once, soon,
 * with jittered exponential backoff, or not at all. Knows nothing of chats.
 */
import { backoffDelay, type BackoffOptions, DEFAULT_BACKOFF } from "./backoff.ts";
import { AUTH_FAILED, type ClosePolicy, isAuthRefusal, policyFor } from "./close-codes.ts";
import { AuthError } from "./http.ts";
import type { ConnectionEvent } from "./types.ts";

export interface ConnectionOptions {
  /** ws(s)://host:port/path of the gateway. */
  url?: string;
  /** The gateway's unix socket (Bun only), with `path` the WebSocket path (default "/"). */
  socketPath?: string;
  path?: string;
  /** A static token, or... */
  token?: string;
  /** ...a function called before every (re)connect (single-use tokens). Throwing AuthError stops reconnecting. */
  getToken?: () => string | Promise<string>;
  clientId?: string;
  backoff?: Partial<BackoffOptions>;
}

interface Hooks {
  query(): Record<string, string>;
  opened(ws: WebSocket): void;
  frame(text: string): void;
  state(event: ConnectionEvent): void;
}

interface Outcome {
  opened: boolean;
  code: number;
  reason: string;
  error: string;
}

const sleep = (ms: number, cancel: Promise<void>) => Promise.race([new Promise<void>((r) => setTimeout(r, ms)), cancel]);

export class Connection {
  #ws: WebSocket | undefined;
  #stopped = false;
  #stop!: () => void;
  readonly #stopSignal = new Promise<void>((resolve) => (this.#stop = resolve));
  readonly #backoff: BackoffOptions;
  /** Resolves when the loop has ended for good. */
  readonly done: Promise<void>;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly hooks: Hooks,
  ) {
    if (!options.url && !options.socketPath) throw new Error("connect: url or socketPath is required");
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.done = this.#loop();
  }

  get socket(): WebSocket | undefined {
    return this.#ws?.readyState === 1 ? this.#ws : undefined;
  }

  /** The socket in use now; closing it from outside makes the client reconnect. */
  get rawSocket(): WebSocket | undefined {
    return this.#ws;
  }

  close(): void {
    this.#stopped = true;
    this.#stop();
    this.#ws?.close(1000, "client closed");
  }

  async #loop(): Promise<void> {
    let attempt = 0;
    while (!this.#stopped) {
      const policy = await this.#attempt();
      if (this.#stopped) break;
      if (policy.opened) attempt = 0;
      const { reconnect, code, reason } = policy;
      if (reconnect === "stop") {
        this.hooks.state({ event: code === 401 || code === 403 ? "auth_failed" : "closed", code, reason });
        return;
      }
      const delay = reconnect === "now" ? 0 : reconnect === "soon" ? backoffDelay(0, this.#backoff) : backoffDelay(attempt++, this.#backoff);
      this.hooks.state({ event: "reconnecting", code, reason, attempt, delay_ms: delay });
      await sleep(delay, this.#stopSignal);
    }
    this.hooks.state({ event: "closed", code: 1000, reason: "client closed" });
  }

  /** One connection, from token to close; returns what to do next. */
  async #attempt(): Promise<ClosePolicy & { opened: boolean; code: number; reason: string }> {
    let token: string | undefined;
    try {
      token = this.options.getToken ? await this.options.getToken() : this.options.token;
    } catch (e) {
      const auth = e instanceof AuthError;
      return { ...(auth ? AUTH_FAILED : policyFor(1006)), opened: false, code: auth ? e.status : 1006, reason: String(e) };
    }
    const out = await this.#open(this.#url(token));
    if (!out.opened && isAuthRefusal(out.error)) return { ...AUTH_FAILED, opened: false, code: Number(/(401|403)/.exec(out.error)![1]), reason: out.error };
    const policy = policyFor(out.code);
    if (policy.surface) this.hooks.state({ event: "refused", code: out.code, reason: policy.why });
    return { ...policy, opened: out.opened, code: out.code, reason: out.reason };
  }

  #url(token: string | undefined): string {
    const query = new URLSearchParams({ ...this.hooks.query(), ...(token && { token }), ...(this.options.clientId && { client_id: this.options.clientId }) });
    const qs = query.toString() ? `?${query}` : "";
    if (this.options.socketPath) return `ws+unix://${this.options.socketPath}:${this.options.path ?? "/"}${qs}`;
    const url = this.options.url!;
    return url + (qs && (url.includes("?") ? `&${qs.slice(1)}` : qs));
  }

  #open(url: string): Promise<Outcome> {
    return new Promise((resolve) => {
      const ws = new WebSocket(url);
      this.#ws = ws;
      const out: Outcome = { opened: false, code: 1006, reason: "", error: "" };
      ws.addEventListener("open", () => {
        out.opened = true;
        this.hooks.state({ event: "open" });
        this.hooks.opened(ws);
      });
      ws.addEventListener("message", (e) => this.hooks.frame(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer)));
      ws.addEventListener("error", (e) => (out.error = (e as ErrorEvent).message ?? ""));
      ws.addEventListener("close", (e) => {
        out.code = e.code;
        out.reason = e.reason;
        if (out.opened) this.hooks.state({ event: "close", code: e.code, reason: e.reason });
        resolve(out);
      });
    });
  }
}
