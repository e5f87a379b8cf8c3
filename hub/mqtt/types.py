"""What hub.mqtt's users handle: options, the broker URL, messages, events, errors.

No paho here: these are the only MQTT types that leave hub.mqtt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import unquote, urlsplit


class MqttError(RuntimeError):
    """The client could not be configured or could not connect (see the message)."""


class MqttRefused(MqttError):
    """The broker answered CONNECT with a failure: `reason` and `code` say which."""

    def __init__(self, message: str, reason: str, code: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = code


class BrokerUrl(NamedTuple):
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_broker_url(url: str) -> BrokerUrl:
    """host, port, tls, username, password from mqtt://, mqtts:// (or tcp://, ssl://) URLs."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl", "tls"):
        raise MqttError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    tls = parts.scheme in ("mqtts", "ssl", "tls")
    if not parts.hostname:
        raise MqttError(f"broker URL {url!r} has no host")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise MqttError(f"broker URL {url!r} has a bad port") from None
    user = unquote(parts.username) if parts.username else None
    pw = unquote(parts.password) if parts.password else None
    return BrokerUrl(parts.hostname, port, tls, user, pw)


@dataclass(frozen=True, slots=True)
class MqttOptions:
    """How to reach and log in to the broker; the same for every connection of a hub
    except the login (hub.runtime.Hub.mqtt_options builds it from the settings)."""

    broker_url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None          # else the URL's
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None           # TLS with this CA even on mqtt:// (as before)
    cert_file: str | None = None         # client certificate (mutual TLS)
    key_file: str | None = None          # its key, unless cert_file holds it
    keepalive_s: int = 15
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    reconnect_jitter: float = 0.2        # shortens each wait by up to this fraction
    mqtt5: bool = False                  # needed for shared subscriptions


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish (a Will, a birth, a farewell)."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message as it arrived: topic, raw payload, and the hub's clock at receipt."""

    topic: str
    payload: bytes
    retain: bool
    received_ms: int


@dataclass(frozen=True, slots=True)
class Ready:
    """Connected, subscribed (SUBACK back) and the birth out: connection number `count`."""

    count: int
    refused_topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Refused:
    """The broker refused the CONNECT (bad password, not authorised, unavailable...)."""

    reason: str
    code: int


@dataclass(frozen=True, slots=True)
class Lost:
    """An accepted connection ended (the broker went away, or dropped us)."""

    reason: str


MqttEvent = Inbound | Ready | Refused | Lost
