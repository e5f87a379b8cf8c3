"""The Telegram/Zalo relay recipe (deploy/webhook-relay/relay.py) end to end, offline: a
press → the hub's signed webhook → the relay checks the signature → a local server
standing in for Telegram's Bot API gets sendMessage with the Vietnamese text."""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType

from tests.e2e.harness import wait_hub_ready
from tests.integrations.recorder import Recorder
from tests.integrations.support import Stack

RELAY = Path(__file__).resolve().parents[2] / "deploy" / "webhook-relay" / "relay.py"
SECRET = "relay-secret-0123456789"


def load_relay() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tiengmo_relay", RELAY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_press_reaches_the_telegram_group_through_the_relay(stack: Stack) -> None:
    telegram = Recorder()
    relay = load_relay().make_server({
        "TIENGMO_WEBHOOK_SECRET": SECRET, "RELAY_LISTEN": "127.0.0.1:0",
        "TELEGRAM_API": telegram.url, "TELEGRAM_BOT_TOKEN": "123:ABC",
        "TELEGRAM_CHAT_ID": "-10042"})
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{relay.server_address[1]}/hook"
        stack.start({"webhooks": {"poll_s": 0.1, "retry_min_s": 0.2, "subscribers": [
            {"name": "telegram", "url": url, "secret": SECRET, "events": ["incident"]}]}})
        village = stack.e2e.village()
        wait_hub_ready(village["na-sang-01"])
        village["na-sang-01"].press("fire")
        [req, *_] = telegram.wait(lambda rs: len(rs) >= 1, what="a sendMessage")
        assert req.path == "/bot123:ABC/sendMessage"
        msg = json.loads(req.body)
        assert msg["chat_id"] == "-10042"
        assert msg["text"].startswith("BÁO ĐỘNG CHÁY tại Thôn Nà Sang, Xã Vi Hương")
        assert "Fire alarm at Thôn Nà Sang" in msg["text"]
        # A forged request is refused and never reaches the group.
        forged = urllib.request.Request(url, data=b'{"type":"incident"}', method="POST",
                                        headers={"X-Tiengmo-Timestamp": "1",
                                                 "X-Tiengmo-Signature": "sha256=00"})
        try:
            urllib.request.urlopen(forged, timeout=5)
            raise AssertionError("the relay took a forged request")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    finally:
        relay.shutdown()
        relay.server_close()
        telegram.close()
