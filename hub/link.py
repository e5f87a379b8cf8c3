"""The hub's MQTT link: the ONLY hub module that imports paho.

What it guarantees (PROTOCOL.md "Transport", "Topics", hub state):
- client id = hub id; the retained hub birth on `hubs/{hub}/state` after every
  (re)connect, the matching retained Last Will set before connecting, and a
  graceful stop that publishes the death itself;
- every (re)connect resubscribes to `Topics.hub_subscriptions()` (as MQTT 5
  shared subscriptions for replicas when `shared_group` is set);
- a refused CONNACK is not a connection: nothing is subscribed or published,
  paho retries with capped back-off;
- paho's callbacks only hand an `Inbound` to `on_message`, which must not
  block (the runtime enqueues it, or for a heartbeat updates memory); the
  work happens on the hub's worker threads.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from protocol import (
    Ack,
    Command,
    HubState,
    HubTime,
    Message,
    TopicKind,
    Topics,
    encode,
    shared,
)
from protocol.topics import QOS, RETAINED

log = logging.getLogger("tiengmo.hub.link")


class LinkError(RuntimeError):
    """The link could not be configured or used (bad URL, TLS files, not started)."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message as it arrived: topic, raw payload, and the hub's clock at receipt."""

    topic: str
    payload: bytes
    retain: bool
    received_ms: int


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Everything the link needs; built from HubSettings by the runtime."""

    hub_id: str
    broker_url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive_s: int = 15
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    shared_group: str | None = None
    # Topics every replica must see even when the alarm stream is shared:
    # retained births are never delivered to shared subscriptions (MQTT 5
    # §4.8.2), and supervision needs every heartbeat on whichever replica leads.
    unshared_leaves: tuple[str, ...] = ("state", "heartbeat")


def parse_broker_url(url: str) -> tuple[str, int, bool, str | None, str | None]:
    """(host, port, tls, username, password) from mqtt://, mqtts:// or tcp:// URLs."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl", "tls"):
        raise LinkError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    tls = parts.scheme in ("mqtts", "ssl", "tls")
    if not parts.hostname:
        raise LinkError(f"broker URL {url!r} has no host")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise LinkError(f"broker URL {url!r} has a bad port") from None
    user = unquote(parts.username) if parts.username else None
    pw = unquote(parts.password) if parts.password else None
    return parts.hostname, port, tls, user, pw


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Link:
    """One paho client for one hub id."""

    def __init__(self, config: LinkConfig, topics: Topics,
                 on_message: Callable[[Inbound], None],
                 on_connected: Callable[[], None] | None = None,
                 clock_ms: Callable[[], int] = _now_ms) -> None:
        self.config = config
        self.topics = topics
        self._on_inbound = on_message
        self._on_connected = on_connected
        self._clock_ms = clock_ms
        self.host, self.port, tls, url_user, url_pw = parse_broker_url(config.broker_url)
        # Set once connected AND subscribed (the SUBACK came back).
        self.connected = threading.Event()
        self.connect_count = 0
        self._stopping = False
        self._started = False
        self._sub_mid = -1
        v5 = config.shared_group is not None
        self._v5 = v5
        # A hub's session is clean: everything it must know lives in the
        # database, and retained births re-arrive on subscribe. (MQTT 5 takes
        # clean start at connect time instead of clean_session.)
        if v5:
            self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.hub_id,
                                       protocol=MQTTProtocolVersion.MQTTv5)
        else:
            self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.hub_id,
                                       protocol=MQTTProtocolVersion.MQTTv311, clean_session=True)
        user = config.username or url_user
        if user:
            self._client.username_pw_set(user, config.password or url_pw)
        if tls or config.ca_file:
            try:
                self._client.tls_set(ca_certs=config.ca_file, certfile=config.cert_file,
                                     keyfile=config.key_file,
                                     tls_version=ssl.PROTOCOL_TLS_CLIENT)
            except (OSError, ssl.SSLError) as exc:
                raise LinkError(f"TLS setup failed: {exc}") from None
        death = HubState(online=False, hub_id=config.hub_id)
        self._client.will_set(topics.hub_state(config.hub_id), encode(death), qos=1, retain=True)
        self._client.reconnect_delay_set(max(1, int(config.reconnect_min_s)),
                                         max(1, int(config.reconnect_max_s)))
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_socket_open = self._on_socket_open

    # ---- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; paho's thread retries until the broker answers."""
        if self._started:
            return
        self._started = True
        self._stopping = False
        self._client.connect_async(self.host, self.port, keepalive=self.config.keepalive_s)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the hub's death (retained) ourselves, then disconnect cleanly."""
        if not self._started:
            return
        self._stopping = True
        if self.connected.is_set():
            death = HubState(online=False, hub_id=self.config.hub_id)
            info = self._client.publish(self.topics.hub_state(self.config.hub_id),
                                        encode(death), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as exc:
                log.warning("hub death not confirmed by the broker: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()
        self._started = False

    # ---- paho callbacks (paho's thread: hand over, never work) ----------

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        # Alarms are tiny and latency matters more than packet count.
        with contextlib.suppress(OSError, AttributeError):  # TLS wrapper, non-TCP socket
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        if reason.is_failure:
            # Refused (bad credentials, not authorised, server unavailable):
            # not a connection. paho closes it and retries with back-off.
            log.error("broker %s:%d refused the hub's connection: %s",
                      self.host, self.port, reason)
            return
        self.connect_count += 1
        subs = self._subscriptions()
        if self._v5:
            _, self._sub_mid = client.subscribe([(t, SubscribeOptions(qos=q)) for t, q in subs])
        else:
            _, self._sub_mid = client.subscribe(subs)
        log.info("connected to broker %s:%d as hub %s (connection #%d)", self.host, self.port,
                 self.config.hub_id, self.connect_count)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any,
                      props: Any) -> None:
        if mid != self._sub_mid:
            return
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            # The broker's ACL refused a topic: alarms on it would be lost silently.
            log.error("broker refused %d of the hub's subscriptions (%s): check its ACL",
                      len(refused), ", ".join(refused))
        # Ready only now: a message published before the SUBACK would miss us,
        # and the birth tells nodes that a hub is listening.
        birth = HubState(online=True, hub_id=self.config.hub_id, ts_ms=self._clock_ms())
        client.publish(self.topics.hub_state(self.config.hub_id), encode(birth), qos=1,
                       retain=True)
        self.connected.set()
        if self._on_connected is not None:
            self._on_connected()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._stopping:
            log.warning("lost the broker %s:%d (%s); reconnecting with back-off",
                        self.host, self.port, reason)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._on_inbound(Inbound(msg.topic, bytes(msg.payload), bool(msg.retain),
                                 self._clock_ms()))

    def _subscriptions(self) -> list[tuple[str, int]]:
        subs = self.topics.hub_subscriptions()
        group = self.config.shared_group
        if group is None:
            return subs
        keep = {self.topics.node_wildcard(leaf) for leaf in self.config.unshared_leaves}
        keep.add(self.topics.all_hub_states())
        return [(t if t in keep else shared(t, group), q) for t, q in subs]

    # ---- publishing -------------------------------------------------------

    def publish_raw(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> None:
        """Hand one message to paho; it is sent now or after the next reconnect."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.error("publish to %s failed: %s", topic, mqtt.error_string(info.rc))

    def publish_message(self, topic: str, msg: Message) -> None:
        """Publish with the QoS and retain flag PROTOCOL.md gives the topic."""
        match = self.topics.parse(topic)
        self._publish_as(match.kind, topic, msg)

    def _publish_as(self, kind: TopicKind, topic: str, msg: Message) -> None:
        # The hub's own topics: their kind is known, the topic need not be parsed
        # back (an ack per alarm, a sound per incident, a beacon every 10 s).
        self.publish_raw(topic, encode(msg), QOS[kind], kind in RETAINED)

    def publish_area_cmd(self, area: str, cmd: Command) -> None:
        self._publish_as(TopicKind.AREA_CMD, self.topics.area_cmd(area), cmd)

    def publish_node_cmd(self, node_id: str, cmd: Command) -> None:
        self._publish_as(TopicKind.NODE_CMD, self.topics.node_cmd(node_id), cmd)

    def publish_ack(self, node_id: str, ack: Ack) -> None:
        self._publish_as(TopicKind.ACK, self.topics.ack(node_id), ack)

    def publish_time(self) -> None:
        beacon = HubTime(hub_id=self.config.hub_id, ts_ms=self._clock_ms())
        self._publish_as(TopicKind.HUB_TIME, self.topics.hub_time(), beacon)
