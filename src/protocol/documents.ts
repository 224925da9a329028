/**
 * The protocol as documents anyone can build against, generated from the TypeBox
 * schemas (the one source of truth): one JSON Schema per client frame, server
 * event and agent frame, and an AsyncAPI 3 document for the client WebSocket
 * channel. `agentgate schema --out DIR` writes them; a test keeps docs/protocol/ fresh.
 */
import type { TSchema } from "@sinclair/typebox";
import pkg from "../../package.json";
import * as agent from "./agent.ts";
import * as client from "./client.ts";
import * as events from "./events.ts";

const CLIENT_FRAMES = [client.NewChat, client.Attach, client.Message, client.SetWorkspaceScope, client.Stop, client.ToolResultEnvelope, client.Ping];
const SERVER_EVENTS = [
  events.Ready, events.Attached, events.ErrorEvent, events.Pong, events.MessageAck, events.RuntimeModelUpdated,
  events.UserEvent, events.GoalStatus, events.Delta, events.StreamEnd, events.ReasoningDelta, events.ReasoningEnd,
  events.ChatMessage, events.FileEdit, events.TurnEnd, events.GoalStateEvent, events.SessionUpdated, events.ToolRequestEvent, events.ToolResultEvent,
];
const AGENT_FRAMES = [
  agent.AgentHello, agent.AgentDelta, agent.AgentStreamEnd, agent.AgentReasoningDelta, agent.AgentReasoningEnd, agent.AgentMessage,
  agent.AgentFileEdit, agent.AgentToolRequest, agent.AgentTurnEnd, agent.AgentSessionUpdate, agent.AgentModel,
];

/** A frame's name: the constant of its `type` (client, agent) or `event` (server) field. */
const nameOf = (schema: TSchema, field: "type" | "event"): string => schema.properties[field].const;

/** Plain JSON Schema: TypeBox's symbol keys are not JSON and drop out. */
const jsonSchema = (schema: TSchema, id: string, title: string) => ({
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: id,
  title,
  ...(JSON.parse(JSON.stringify(schema)) as object),
});

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

interface Group {
  dir: string;
  field: "type" | "event";
  schemas: TSchema[];
  what: string;
}
const GROUPS: Group[] = [
  { dir: "client", field: "type", schemas: CLIENT_FRAMES, what: "client → gateway frame" },
  { dir: "server", field: "event", schemas: SERVER_EVENTS, what: "gateway → client event" },
  { dir: "agent", field: "type", schemas: AGENT_FRAMES, what: "agent → gateway frame" },
];

function asyncApi(): object {
  const message = (g: Group, s: TSchema) => {
    const name = nameOf(s, g.field);
    return [`${g.dir}.${name}`, { name, title: `${name} (${g.what})`, contentType: "application/json", payload: { $ref: `${g.dir}/${name}.json` } }] as const;
  };
  const clientMessages = Object.fromEntries(GROUPS[0]!.schemas.map((s) => message(GROUPS[0]!, s)));
  const serverMessages = Object.fromEntries(GROUPS[1]!.schemas.map((s) => message(GROUPS[1]!, s)));
  const refs = (messages: object) => Object.keys(messages).map((k) => ({ $ref: `#/channels/client/messages/${k}` }));
  return {
    asyncapi: "3.0.0",
    info: {
      title: "agentgate client WebSocket",
      version: pkg.version,
      description: "One JSON object per text frame. See docs/protocol.md for semantics (seq, resume, close codes, durability).",
    },
    servers: { local: { host: "127.0.0.1:8765", protocol: "ws", pathname: "/", description: "the default listener; a unix socket serves the same channel" } },
    channels: {
      client: {
        address: "/",
        messages: { ...clientMessages, ...serverMessages },
        bindings: {
          ws: {
            query: {
              type: "object",
              properties: {
                token: { type: "string", description: "single-use issued token, the static token, or a JWT" },
                client_id: { type: "string" },
                capabilities: { type: "string", description: "comma-separated device tools" },
              },
            },
          },
        },
      },
    },
    operations: {
      sendFrame: { action: "send", channel: { $ref: "#/channels/client" }, messages: refs(clientMessages) },
      receiveEvent: { action: "receive", channel: { $ref: "#/channels/client" }, messages: refs(serverMessages) },
    },
  };
}

/** Every document, by path relative to the output directory. */
export function protocolDocuments(): Map<string, string> {
  const docs = new Map<string, string>();
  for (const g of GROUPS) {
    for (const s of g.schemas) {
      const name = nameOf(s, g.field);
      docs.set(`${g.dir}/${name}.json`, json(jsonSchema(s, `${g.dir}/${name}.json`, `${name}: ${g.what}`)));
    }
  }
  docs.set("asyncapi.json", json(asyncApi()));
  return docs;
}
