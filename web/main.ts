/**
 * The built-in chat page: connects with a bootstrap token (web/auth.ts), lists
 * the gateway's chats (web/sidebar.ts), shows the open one (web/thread.ts) and
 * sends what is typed or attached. The open chat's id lives in the URL hash, so
 * a reload reopens it and replays its history, a running turn included.
 */
import "./style.css";
import { type Chat, type ChatStreamEvent, type Client, type ConnectionEvent, connect, GatewayApi } from "../src/client/index.ts";
import { AgentPicker } from "./agent-picker.ts";
import { Attachments } from "./attachments.ts";
import { freshBootstrap } from "./auth.ts";
import { byId } from "./dom.ts";
import { Sidebar } from "./sidebar.ts";
import { setupTheme } from "./theme.ts";
import { ThreadView } from "./thread.ts";

interface OpenChat {
  chat: Chat;
  /** Every event seen, to redraw the chat when it is opened again. */
  log: ChatStreamEvent[];
  running: boolean;
}

const RUNNING: Partial<Record<string, boolean>> = { user: true, delta: true, reasoning_delta: true, turn_end: false };

const input = byId<HTMLTextAreaElement>("input");
const thread = byId("thread");
const chats = new Map<string, OpenChat>();
let api: GatewayApi;
let client: Client;
let current: OpenChat | undefined;
let view = new ThreadView(thread);

function setConnection(state: "connecting" | "online" | "offline" | "refused", text: string): void {
  const el = byId("conn");
  el.dataset.state = state;
  el.textContent = text;
}

function setRunning(): void {
  const running = current?.running ?? false;
  byId("stop").hidden = !running;
  byId("send").hidden = running;
  document.body.dataset.running = String(running);
}

function follow(chat: Chat): OpenChat {
  const open: OpenChat = { chat, log: [], running: false };
  chats.set(chat.id, open);
  chat.on("*", (event) => {
    open.log.push(event);
    const running = event.event === "goal_status" ? event.status === "running" : RUNNING[event.event];
    if (running !== undefined) open.running = running;
    if (open !== current) return;
    view.show(event);
    setRunning();
    if (event.event === "turn_end" || event.event === "session_updated") void sidebar.refresh();
  });
  return open;
}

function show(open: OpenChat | undefined): void {
  current = open;
  view = new ThreadView(thread);
  for (const event of open?.log ?? []) view.show(event);
  history.replaceState(null, "", open ? `#${open.chat.id}` : location.pathname);
  sidebar.select(open?.chat.id);
  setRunning();
  agentPicker.offer(!open);
  document.body.classList.remove("menu-open");
  input.focus();
}

const openChat = (id: string) => show(chats.get(id) ?? follow(client.chat(id, 0)));

const sidebar = new Sidebar(byId("sessions"), () => api, {
  open: openChat,
  deleted: (id) => {
    chats.delete(id);
    if (current?.chat.id === id) show(undefined);
  },
});
const attachments = new Attachments(byId("attachments"), () => api);
const agentPicker = new AgentPicker(byId("agent"));

/** Sends what is typed and attached; a refusal (an upload too big, a message the gateway did not take) is shown in the chat. */
function send(): void {
  sendNow().catch((err: unknown) => view.error(`Not sent: ${err instanceof Error ? err.message : String(err)}`));
}

async function sendNow(): Promise<void> {
  const text = input.value.trim();
  if ((text === "" && attachments.empty) || current?.running) return;
  const mediaIds = await attachments.upload();
  input.value = "";
  if (!current) show(follow(await client.newChat(agentPicker.chosen())));
  await current?.chat.send(text, mediaIds.length > 0 ? { mediaIds } : {});
  void sidebar.refresh();
}

function setupComposer(): void {
  input.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.shiftKey || e.isComposing) return;
    e.preventDefault();
    send();
  });
  byId("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });
  byId("stop").addEventListener("click", () => current?.chat.stop());
  byId("new-chat").addEventListener("click", () => show(undefined));
  byId("menu").addEventListener("click", () => document.body.classList.toggle("menu-open"));
}

/** Connects: the bootstrap request and the WebSocket, started once the shell has painted. */
async function start(): Promise<void> {
  const first = await freshBootstrap();
  agentPicker.fill(first.agents, first.default_agent);
  agentPicker.offer(!current);
  let firstToken: string | undefined = first.token;
  const useApi = (apiToken: string) => (api = new GatewayApi({ baseUrl: location.origin, apiToken }));
  useApi(first.api_token);
  client = connect({
    url: first.ws_url,
    getToken: async () => {
      if (firstToken === undefined) return freshBootstrap().then((b) => (useApi(b.api_token), b.token));
      const token = firstToken;
      firstToken = undefined;
      return token;
    },
  });
  client.on("open", () => setConnection("online", "connected"));
  client.on("reconnecting", (e) => setConnection("offline", `reconnecting in ${Math.ceil(((e as ConnectionEvent).delay_ms ?? 0) / 1000)} s…`));
  client.on("auth_failed", () => setConnection("refused", "not authorized"));
  client.on("closed", () => setConnection("refused", "disconnected"));
  const fromHash = () => location.hash.length > 1 && location.hash.slice(1) !== current?.chat.id && openChat(location.hash.slice(1));
  window.addEventListener("hashchange", fromHash);
  fromHash();
  await sidebar.refresh();
}

/**
 * The shell (sidebar, composer, connection state) is static HTML and paints
 * without this script; the network waits for the frame after that paint, so
 * nothing the page fetches competes with it. A hidden tab paints nothing and starts at once.
 */
function afterFirstPaint(run: () => void): void {
  if (document.visibilityState === "hidden") return run();
  requestAnimationFrame(() => setTimeout(run, 0));
}

setupTheme(byId("theme"));
setupComposer();
afterFirstPaint(() => start().catch((err: unknown) => setConnection("refused", `cannot connect: ${err instanceof Error ? err.message : String(err)}`)));
