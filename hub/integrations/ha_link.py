"""The Home Assistant bridge's own MQTT connection: the ONLY integrations module that
imports paho.

A client of its own (id `<hub_id>-ha` by default), so the hub's protocol session and its
ACL stay exactly as PROTOCOL.md has them. Its Last Will marks the bridge offline
(retained), which makes every tiengmo entity unavailable in Home Assistant. A refused
CONNACK is not a connection; paho's callbacks only enqueue, the bridge's worker thread
does the work.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ..link import parse_broker_url

log = logging.getLogger("tiengmo.hub.integrations.ha_link")


@dataclass(frozen=True, slots=True)
class HaInbound:
    topic: str
    payload: bytes


CONNECTED = HaInbound("", b"")   # put on the queue after each (re)connect and SUBACK


class HaLink:
    def __init__(self, *, client_id: str, broker_url: str, username: str | None,
                 password: str | None, ca_file: str | None, will_topic: str,
                 subscriptions: list[str], inbox: queue.Queue[HaInbound | None]) -> None:
        self.host, self.port, tls, url_user, url_pw = parse_broker_url(broker_url)
        self.will_topic = will_topic
        self.subscriptions = subscriptions
        self.inbox = inbox
        self.connected = threading.Event()
        self._sub_mid = -1
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=MQTTProtocolVersion.MQTTv311, clean_session=True)
        user = username or url_user or client_id
        self._client.username_pw_set(user, password or url_pw)
        if tls or ca_file:
            self._client.tls_set(ca_certs=ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self._client.will_set(will_topic, b"offline", qos=1, retain=True)
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_socket_open = self._on_socket_open

    def start(self) -> None:
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        if self.connected.is_set():
            info = self._client.publish(self.will_topic, b"offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(3)
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def publish(self, topic: str, payload: str | bytes, *, retain: bool = False) -> None:
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.error("publish to %s failed: %s", topic, mqtt.error_string(info.rc))

    # --- paho's thread: hand over, never work ---------------------------------------------------

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        if reason.is_failure:
            log.error("broker %s:%d refused the Home Assistant bridge: %s (check its user "
                      "and ACL, docs/integrations.md)", self.host, self.port, reason)
            return
        _, self._sub_mid = client.subscribe([(t, 1) for t in self.subscriptions])

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any,
                      props: Any) -> None:
        if mid != self._sub_mid:
            return
        if any(r.is_failure for r in reasons):
            log.error("the broker refused the Home Assistant bridge's subscriptions: "
                      "check its ACL (docs/integrations.md)")
        client.publish(self.will_topic, b"online", qos=1, retain=True)
        self.connected.set()
        self.inbox.put(CONNECTED)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        self.connected.clear()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.inbox.put(HaInbound(msg.topic, bytes(msg.payload)))
