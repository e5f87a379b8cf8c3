"""The sentinel's MQTT connection: paho on its own thread, handing events to a queue.

The only module of the sentinel that imports paho. It subscribes to `hubs/+/state` and
`hub/time` and nothing else (its broker role allows nothing else); clean sessions, since
the retained hub states come again on every connect and old beacons mean nothing.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol import Topics

from .config import MqttSettings

log = logging.getLogger("tiengmo.sentinel.link")


@dataclass(frozen=True, slots=True)
class BrokerUp:
    """Connected and subscribed."""


@dataclass(frozen=True, slots=True)
class BrokerDown:
    reason: str


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


LinkEvent = BrokerUp | BrokerDown | Message


class SentinelLink:
    def __init__(self, cfg: MqttSettings, client_id: str,
                 on_event: Callable[[LinkEvent], None]) -> None:
        self.cfg = cfg
        self._on_event = on_event
        topics = Topics(cfg.prefix)
        self._subs = [(topics.all_hub_states(), 1), (topics.hub_time(), 0)]
        self._sub_mid = -1
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                        protocol=mqtt.MQTTv311)
        self._client = c
        if cfg.username:
            c.username_pw_set(cfg.username, cfg.password())
        if cfg.tls:
            c.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                      cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.reconnect_delay_set(1, max(1, round(cfg.reconnect_max_s)))
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message

    def start(self) -> None:
        self._client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        if rc.is_failure:
            log.error("broker refused the sentinel's login: %s", rc)
            self._on_event(BrokerDown(f"refused: {rc}"))
            return
        _, self._sub_mid = client.subscribe(self._subs)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any,
                      props: Any = None) -> None:
        if mid != self._sub_mid:
            return
        refused = [str(c) for c in codes if getattr(c, "is_failure", False)]
        if refused:
            # Without both subscriptions the hub would look gone: say why, loudly.
            log.error("broker refused the sentinel's subscriptions (check its role): %s",
                      ", ".join(refused))
            self._on_event(BrokerDown("subscriptions refused"))
            return
        log.info("sentinel connected to %s:%d", self.cfg.host, self.cfg.port)
        self._on_event(BrokerUp())

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any,
                       props: Any = None) -> None:
        self._on_event(BrokerDown(str(rc)))

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._on_event(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))
