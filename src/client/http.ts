/**
 * The gateway's HTTP helpers a client needs: the loopback bootstrap route
 * (a fresh single-use WebSocket token per call), the sessions API and media
 * upload. Over a unix socket under Bun, `socketPath` is passed to fetch.
 */
export class AuthError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "AuthError";
  }
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export interface HttpTarget {
  /** http(s)://host:port of the gateway; ignored with socketPath. */
  baseUrl?: string;
  /** The gateway's unix socket (Bun). */
  socketPath?: string;
}

export interface Bootstrap {
  token: string;
  api_token: string;
  ws_url: string;
  ws_path: string;
  expires_in: number;
  /** The agents a new chat may name (agentgate; absent from other gateways). */
  agents?: string[];
  /** The agent that serves a chat created without naming one. */
  default_agent?: string;
}

/** fetch() against the gateway; non-2xx becomes AuthError (401/403) or HttpError. */
export async function gatewayFetch(target: HttpTarget, path: string, init: RequestInit = {}): Promise<Response> {
  const base = target.socketPath ? "http://localhost" : (target.baseUrl ?? "").replace(/\/+$/, "");
  const res = await fetch(base + path, { ...init, ...(target.socketPath && { unix: target.socketPath }) } as RequestInit);
  if (res.ok) return res;
  const body = (await res.text()).slice(0, 200);
  if (res.status === 401 || res.status === 403) throw new AuthError(res.status, `${path}: ${res.status} ${body}`);
  throw new HttpError(res.status, `${path}: ${res.status} ${body}`);
}

const bearer = (token: string | undefined): Record<string, string> | undefined => (token ? { authorization: `Bearer ${token}` } : undefined);

/** GET /webui/bootstrap: local peers (or holders of the secret) get a single-use WebSocket token and an API token. */
export async function bootstrap(target: HttpTarget & { secret?: string }): Promise<Bootstrap> {
  const res = await gatewayFetch(target, "/webui/bootstrap", { headers: bearer(target.secret) });
  return (await res.json()) as Bootstrap;
}

/** A `getToken` for connect(): a fresh bootstrap token before every (re)connect. */
export const bootstrapToken = (target: HttpTarget & { secret?: string }) => async (): Promise<string> => (await bootstrap(target)).token;

export interface SessionRow {
  key: string;
  created_at: string;
  updated_at: string;
  title?: string | null;
  preview?: string | null;
}

export interface UploadedMedia {
  media_id: string;
  url: string;
  mime: string;
  size: number;
}

const keyOf = (chatId: string) => encodeURIComponent(`websocket:${chatId}`);

/** The sessions API and media upload, with an API token (bootstrap's api_token, the static token or a JWT). */
export class GatewayApi {
  constructor(private readonly target: HttpTarget & { apiToken: string }) {}

  async #json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await gatewayFetch(this.target, path, { ...init, headers: { ...bearer(this.target.apiToken), ...init.headers } });
    return (await res.json()) as T;
  }

  async listSessions(): Promise<SessionRow[]> {
    return (await this.#json<{ sessions: SessionRow[] }>("/api/sessions")).sessions;
  }

  /** The chat as a webui thread (schemaVersion 3). */
  thread(chatId: string): Promise<{ messages: unknown[] }> {
    return this.#json(`/api/sessions/${keyOf(chatId)}/webui-thread`);
  }

  rename(chatId: string, title: string): Promise<{ key: string; title: string }> {
    return this.#json(`/api/sessions/${keyOf(chatId)}/rename`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title }) });
  }

  delete(chatId: string): Promise<{ deleted: boolean }> {
    return this.#json(`/api/sessions/${keyOf(chatId)}/delete`, { method: "POST" });
  }

  /** POST /api/media: the answer's media_id goes into `chat.send(text, { mediaIds })`. */
  uploadMedia(data: Blob, name?: string): Promise<UploadedMedia> {
    const query = name ? `?name=${encodeURIComponent(name)}` : "";
    return this.#json(`/api/media${query}`, { method: "POST", headers: { "content-type": data.type }, body: data });
  }
}
