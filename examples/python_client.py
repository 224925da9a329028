#!/usr/bin/env python3
"""A minimal agentgate client in Python using only the `websockets` package.

    python3 examples/python_client.py --url ws://127.0.0.1:8765/ --bootstrap http://127.0.0.1:8765 hello

It shows the protocol a client in any language follows (docs/protocol.md): fetch a
single-use token before every connect, create a chat, send a message with a
client_msg_id (resent after a reconnect until acknowledged), remember the last
seq, and after a reconnect attach with since_seq so nothing is lost or repeated.
Prints the turn's text on stdout.
"""
import argparse
import asyncio
import json
import sys
import urllib.request
import uuid

import websockets


def fresh_token(bootstrap_url):
    with urllib.request.urlopen(bootstrap_url.rstrip("/") + "/webui/bootstrap") as res:
        return json.load(res)["token"]


async def run(url, bootstrap_url, text):
    chat_id, last_seq, answer = None, 0, []
    message = {"type": "message", "content": text, "client_msg_id": str(uuid.uuid4())}
    acked = False
    for _ in range(10):  # reconnects, bounded
        token = fresh_token(bootstrap_url) if bootstrap_url else None
        target = f"{url}{'&' if '?' in url else '?'}token={token}" if token else url
        try:
            async with websockets.connect(target) as ws:
                await ws.recv()  # ready
                if chat_id is None:
                    await ws.send(json.dumps({"type": "new_chat"}))
                    chat_id = json.loads(await ws.recv())["chat_id"]
                else:
                    await ws.send(json.dumps({"type": "attach", "chat_id": chat_id, "since_seq": last_seq}))
                if not acked:
                    await ws.send(json.dumps({**message, "chat_id": chat_id}))
                async for raw in ws:
                    event = json.loads(raw)
                    if event.get("event") == "message_ack":
                        acked = True
                    seq = event.get("seq")
                    if seq is None or event.get("chat_id") != chat_id:
                        continue
                    if seq <= last_seq:
                        continue  # already seen
                    last_seq = seq
                    if event["event"] == "delta":
                        answer.append(event["text"])
                    elif event["event"] == "turn_end":
                        return "".join(answer), event["status"]
        except (OSError, websockets.ConnectionClosed) as e:
            print(f"[reconnecting after {e!r}]", file=sys.stderr)
            await asyncio.sleep(0.2)
    raise SystemExit("gave up after 10 connections")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="ws://127.0.0.1:8765/")
    parser.add_argument("--bootstrap", help="http://host:port to fetch a token from before each connect")
    parser.add_argument("text", nargs="*", default=["hello"])
    args = parser.parse_args()
    text, status = asyncio.run(run(args.url, args.bootstrap, " ".join(args.text)))
    print(text)
    if status != "done":
        sys.exit(f"turn ended: {status}")


if __name__ == "__main__":
    main()
