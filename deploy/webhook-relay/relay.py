#!/usr/bin/env python3
"""A tiny relay from the tiengmo hub's webhooks to a Telegram group or a Zalo OA chat.

Python 3 standard library only; run it next to the hub (or anywhere the hub can reach):

    TIENGMO_WEBHOOK_SECRET=... RELAY_TARGET=telegram \\
    TELEGRAM_BOT_TOKEN=123:ABC TELEGRAM_CHAT_ID=-100123456 python3 relay.py

and subscribe it in hub.toml (docs/integrations.md):

    [[integrations.webhooks.subscribers]]
    name = "telegram"
    url = "http://127.0.0.1:8787/hook"
    secret_file = "/etc/tiengmo/relay.secret"
    events = ["incident"]

Every request's signature is checked (HMAC-SHA256 over "<timestamp>.<body>", timestamps
older than 5 minutes refused); the Vietnamese line, then the English one, goes to the
chat. If the chat API fails the relay answers 502, so the hub retries with back-off.

Environment: RELAY_LISTEN (127.0.0.1:8787), TIENGMO_WEBHOOK_SECRET, RELAY_TARGET
(telegram | zalo), TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID, TELEGRAM_API
(https://api.telegram.org), ZALO_ACCESS_TOKEN, ZALO_USER_ID, ZALO_API
(https://openapi.zalo.me/v3.0/oa/message/cs), RELAY_EVENTS (incident).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_AGE_S = 300


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    try:
        if abs(time.time() - int(timestamp)) > MAX_AGE_S:
            return False
    except ValueError:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), signature)


def chat_request(env: Mapping[str, str], text: str) -> urllib.request.Request:
    """The chat API call that posts `text` (Telegram's sendMessage, or Zalo OA's message)."""
    body: dict[str, object]
    headers: dict[str, str] = {}
    if env.get("RELAY_TARGET", "telegram") == "zalo":
        url = env.get("ZALO_API", "https://openapi.zalo.me/v3.0/oa/message/cs")
        body = {"recipient": {"user_id": env["ZALO_USER_ID"]}, "message": {"text": text}}
        headers = {"access_token": env["ZALO_ACCESS_TOKEN"]}
    else:
        api = env.get("TELEGRAM_API", "https://api.telegram.org")
        url = f"{api}/bot{env['TELEGRAM_BOT_TOKEN']}/sendMessage"
        body = {"chat_id": env["TELEGRAM_CHAT_ID"], "text": text}
    return urllib.request.Request(url, data=json.dumps(body, ensure_ascii=False).encode(),
                                  headers={"Content-Type": "application/json", **headers},
                                  method="POST")


def make_server(env: Mapping[str, str]) -> ThreadingHTTPServer:
    secret = env["TIENGMO_WEBHOOK_SECRET"]
    wanted = set(env.get("RELAY_EVENTS", "incident").split(","))
    host, _, port = env.get("RELAY_LISTEN", "127.0.0.1:8787").rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not verify(secret, self.headers.get("X-Tiengmo-Timestamp", ""), body,
                          self.headers.get("X-Tiengmo-Signature", "")):
                return self._answer(401)
            msg: dict[str, Any] = json.loads(body)
            if msg.get("type") not in wanted:
                return self._answer(204)
            text = f"{msg['text_vi']}\n{msg['text_en']}"
            try:
                with urllib.request.urlopen(chat_request(env, text), timeout=10) as r:
                    r.read()
            except (urllib.error.URLError, OSError) as exc:
                print(f"relay: chat API failed: {exc}", file=sys.stderr)
                return self._answer(502)   # the hub will retry
            return self._answer(204)

        def log_message(self, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)


if __name__ == "__main__":
    server = make_server(os.environ)
    print(f"relay listening on {server.server_address}", file=sys.stderr)
    server.serve_forever()
