"""One knock on the broker's door: connect once, read the CONNACK, leave cleanly.

`tiengmo hub` asks this before it starts (hub.preflight turns the answer into
words and a verdict): a login the broker refuses will never work, so the command
stops at once. The connection is closed with a DISCONNECT when accepted, so no
Will is published. Kept beside hub.mqtt.client so that paho stays inside hub.mqtt.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


@dataclass(frozen=True, slots=True)
class Answer:
    """What the broker said: a CONNACK code (MQTT 5 numbering), or why there was none."""

    code: int | None = None
    reason: str = ""
    tls_error: str | None = None
    os_error: OSError | None = None


def knock(url: str, *, client_id: str, username: str | None, password: str | None,
          ca_file: str | None = None, cert_file: str | None = None,
          key_file: str | None = None, mqtt5: bool = False, timeout_s: float = 5.0) -> Answer:
    parts = urlsplit(url)
    host, tls = parts.hostname or "", parts.scheme == "mqtts"
    port = parts.port or (8883 if tls else 1883)
    answer: dict[str, Any] = {}
    done = threading.Event()
    if mqtt5:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=MQTTProtocolVersion.MQTTv5)
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=MQTTProtocolVersion.MQTTv311, clean_session=True)

    def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        answer["reason"] = reason
        done.set()

    client.on_connect = on_connect
    if username:
        client.username_pw_set(username, password)
    try:
        if tls or ca_file:
            client.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file,
                           tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.connect(host, port, keepalive=max(5, int(timeout_s) * 2))
    except ssl.SSLError as exc:
        return Answer(tls_error=str(exc.reason or exc))
    except OSError as exc:
        return Answer(os_error=exc)
    try:
        for _ in range(int(timeout_s * 10)):
            client.loop(0.1)
            if done.is_set():
                break
    except OSError as exc:
        return Answer(os_error=exc)
    finally:
        _close(client, answer.get("reason"))
    reason = answer.get("reason")
    if reason is None:
        return Answer()
    return Answer(code=int(reason.value), reason=str(reason))


def _close(client: Any, reason: Any) -> None:
    """A clean DISCONNECT when accepted (no Will is sent), then the socket closed."""
    with contextlib.suppress(Exception):
        if reason is not None and not reason.is_failure:
            client.disconnect()
            client.loop(0.2)
    with contextlib.suppress(Exception):
        sock = client.socket()
        if sock is not None:
            sock.close()
