/**
 * `agentgate chat`: talk to the running gateway from a terminal, on the client
 * SDK (so it reconnects and resumes like any client). It connects over the unix
 * socket when the config has one, else TCP, with a fresh token per connect
 * (`agentgate token`'s route) or the given --token. `--once` reads stdin, prints
 * the reply text only and exits (non-zero when the turn did not finish).
 * Interactively: replies stream as they arrive; /new, /stop, /sessions, /open ID;
 * Ctrl-C stops a running turn, a second Ctrl-C (or one while idle) exits.
 */
import { createInterface, type Interface } from "node:readline";
import { type Chat, type Client, connect, GatewayApi, type TurnSummary } from "../client/index.ts";
import type { Config } from "../config.ts";
import { ConfigError } from "../config-sources.ts";
import { flagOn } from "./args.ts";
import { type GatewayAddress, gatewayAddress } from "./gateway-address.ts";
import { issueToken } from "./token.ts";

interface Session {
  client: Client;
  address: GatewayAddress;
  /** The API token for /sessions: the static --token, or bootstrap's latest. */
  apiToken?: string;
}

function open(config: Config, flags: Record<string, string>): Session {
  const address = gatewayAddress(config, flags.url);
  const session = { address, apiToken: flags.token } as Session;
  const getToken = async () => {
    if (flags.token) return flags.token;
    const issued = await issueToken(config, address, flags.ca);
    session.apiToken = issued.api_token ?? session.apiToken;
    return issued.token;
  };
  session.client = connect({ ...(address.unix ? { socketPath: address.unix, path: config.path } : { url: address.ws }), getToken });
  return session;
}

/** `pending`, or a refusal when the client stops for good first (authentication refused). */
function unlessRefused<T>(client: Client, pending: Promise<T>): Promise<T> {
  const refused = client.done.then(() => Promise.reject(new ConfigError("chat: the gateway refused this client (token)")));
  return Promise.race([pending, refused]);
}

async function once(session: Session): Promise<void> {
  const text = (await Bun.stdin.text()).trim();
  const chat = await unlessRefused(session.client, session.client.newChat());
  let last = "";
  chat.on("delta", (e) => {
    last = e.text;
    process.stdout.write(e.text);
  });
  const turn = unlessRefused(session.client, chat.nextTurn());
  await chat.send(text);
  const { status, error } = await turn;
  if (last !== "" && !last.endsWith("\n")) process.stdout.write("\n");
  await session.client.close();
  if (status !== "done") throw new ConfigError(`chat: the turn ended ${status}${error ? `: ${error}` : ""}`);
}

class Terminal {
  chat: Chat | undefined;
  running = false;
  closed = false;
  readonly #followed = new Set<Chat>();
  /** This terminal's client ids (one per connection): its own lines are on screen already. */
  readonly #mine = new Set<string>();

  constructor(
    readonly session: Session,
    readonly rl: Interface,
  ) {
    session.client.on("ready", (e) => this.#mine.add((e as { client_id: string }).client_id));
  }

  follow(chat: Chat): void {
    this.chat = chat;
    if (this.#followed.has(chat)) return;
    this.#followed.add(chat);
    chat.on("*", (e) => {
      if (chat !== this.chat) return;
      if (e.event === "user") this.running = true;
      if (e.event === "user" && !this.#mine.has(e.client_id ?? "")) process.stdout.write(`you> ${e.text}\n`);
      if (e.event === "delta") process.stdout.write(e.text);
      if (e.event === "message" && !e.turn_id) process.stdout.write(`[${e.text}]\n`);
      if (e.event === "turn_end") {
        this.running = false;
        process.stdout.write(e.status === "done" ? "\n" : `\n[${e.status}${e.error ? `: ${e.error}` : ""}]\n`);
        this.prompt();
      }
    });
  }

  prompt(): void {
    if (!this.closed) this.rl.prompt();
  }

  async command(line: string): Promise<void> {
    const [name, arg] = line.trim().split(/\s+/, 2);
    if (name === "/new") this.follow(await this.session.client.newChat());
    else if (name === "/stop") this.chat?.stop();
    else if (name === "/open" && arg) await this.open(arg);
    else if (name === "/sessions") await this.sessions();
    else process.stdout.write("commands: /new, /stop, /sessions, /open ID\n");
    this.prompt();
  }

  /** Follows chat `id` from its start; resolves once its history is replayed (so the next line comes after it). */
  async open(id: string): Promise<void> {
    const { client } = this.session;
    const attached = new Promise<number>((resolve) => {
      const off = client.on("attached", (e) => {
        const frame = e as { chat_id: string; latest_seq: number };
        if (frame.chat_id !== id) return;
        off();
        resolve(frame.latest_seq);
      });
    });
    const chat = client.chat(id, 0);
    this.follow(chat);
    const latest = await unlessRefused(client, attached);
    await new Promise<void>((resolve) => {
      const check = () => chat.lastSeq >= latest && (off(), resolve());
      const off = chat.on("*", check);
      check();
    });
  }

  async sessions(): Promise<void> {
    const { address, apiToken } = this.session;
    if (!apiToken) return void process.stdout.write("no API token: pass --token, or let the gateway's bootstrap route issue one\n");
    const api = new GatewayApi({ ...(address.unix ? { socketPath: address.unix } : { baseUrl: address.base }), apiToken });
    for (const row of await api.listSessions()) {
      const id = row.key.replace(/^websocket:/, "");
      process.stdout.write(`${id}${id === this.chat?.id ? " *" : ""}  ${row.title || row.preview || ""}\n`);
    }
  }

  /** Sends a line; from a pipe (no TTY) the next line waits for this turn to end. */
  async say(text: string): Promise<void> {
    if (!this.chat) this.follow(await unlessRefused(this.session.client, this.session.client.newChat()));
    const chat = this.chat as Chat;
    this.running = true;
    const turn = unlessRefused(this.session.client, chat.nextTurn());
    await chat.send(text);
    if (!process.stdin.isTTY) await turn;
  }

  /** Ctrl-C: stop the running turn; when idle (or pressed again before it ends), leave. */
  interrupt(): boolean {
    if (!this.running) return false;
    this.running = false;
    this.chat?.stop();
    return true;
  }
}

async function interactive(session: Session): Promise<void> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: "> ", terminal: process.stdin.isTTY });
  const term = new Terminal(session, rl);
  session.client.on("reconnecting", () => process.stderr.write("[reconnecting…]\n"));
  rl.on("SIGINT", () => term.interrupt() || rl.close());
  rl.on("close", () => (term.closed = true));
  term.prompt();
  // Lines are handled one at a time, in order (a /new must finish before the next message).
  for await (const line of rl) {
    if (line.trim() === "") term.prompt();
    else if (line.startsWith("/")) await term.command(line);
    else await term.say(line);
  }
  if (term.running && term.chat) await unlessRefused(session.client, term.chat.nextTurn());
  await session.client.close();
}

export async function chatCommand(config: Config, flags: Record<string, string>): Promise<void> {
  const session = open(config, flags);
  await (flagOn(flags.once) ? once(session) : interactive(session));
}
