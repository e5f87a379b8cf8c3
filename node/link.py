"""The node's MQTT link on a Pi: paho's client on paho's own network thread.

The only module of the node that imports paho; it is the agent's `Transport`
(transport.py, which lists what every transport guarantees). Besides those:
- the node's subscriptions are renewed on every connect, and it is up only once
  the broker confirms them;
- callbacks only hand events to the agent's queue (no work on paho's thread);
- TCP_NODELAY, so a one-packet alarm is not held back by Nagle's algorithm.

The simulator's link (firmware_sim/simlink.py) subclasses this one: it
overrides the three steps marked "Hook" (coming up, starting and stopping the
network side) and the socket-open callback, and adds its fault injection and
shared loop there. Nothing of the simulator's is in this module.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .config import MqttConfig
from .transport import Connected, Disconnected, Incoming, LinkEvent, Outgoing, Refused

log = logging.getLogger("tiengmo.node.link")


class Sent:
    """A publish in flight; `wait` blocks until the broker has it (QoS 1) or times out."""

    def __init__(self, info: Any) -> None:
        self._info = info

    def wait(self, timeout: float) -> bool:
        try:
            self._info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return bool(self._info.is_published())


class Link:
    """One node's connection; `on_event` is called on paho's thread and must only enqueue."""

    def __init__(self, cfg: MqttConfig, client_id: str, *, will: Outgoing,
                 birth: Callable[[], Outgoing], subscriptions: list[tuple[str, int]],
                 on_event: Callable[[LinkEvent], None]) -> None:
        self.cfg = cfg
        self._birth = birth
        self._subs = subscriptions
        self._on_event = on_event
        self._connected = threading.Event()
        self._started = False
        self._sub_mid = -1
        self._session_up = False   # CONNACK accepted (maybe before SUBACK)
        # clean_session=False: a QoS 1 command sent during a short blip is
        # queued by the broker and still delivered (and judged for expiry).
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=False, protocol=mqtt.MQTTv311)
        self._client = c
        topic, payload, qos, retain = will
        c.will_set(topic, payload, qos=qos, retain=retain)   # before any connect
        if cfg.username:
            c.username_pw_set(cfg.username, cfg.password())
        if cfg.tls:
            c.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                      certfile=str(cfg.cert_file) if cfg.cert_file else None,
                      keyfile=str(cfg.key_file) if cfg.key_file else None,
                      cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)  # type: ignore[arg-type]
        c.max_inflight_messages_set(20)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_socket_open = self._on_socket_open

    # -- paho callbacks (paho's thread: enqueue only) -------------------------

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        # AttributeError: not a TCP socket (e.g. a test double)
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        if rc.is_failure:
            # Refused: not a connection. paho drops the socket and retries.
            self._connected.clear()
            log.warning("broker %s refused the connection: %s", self.cfg.url, rc)
            self._on_event(Refused(str(rc)))
            return
        self._come_up(client)
        # Up only once the broker confirms the subscriptions (on_subscribe).

    def _come_up(self, client: Any) -> None:
        """Hook: the broker accepted the CONNECT; renew the subscriptions, send the birth.

        Subscriptions, then the birth, go out here, in order, before anything
        the agent sends: a node is never heard from without its birth first.
        The broker handles one connection's packets in order, so once the hub
        sees the birth the node is subscribed: a beacon or command the hub
        sends in answer is never missed.
        """
        self._session_up = True
        _, self._sub_mid = client.subscribe(self._subs)
        topic, payload, qos, retain = self._birth()
        client.publish(topic, payload, qos=qos, retain=retain)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any,
                      props: Any = None) -> None:
        if mid != self._sub_mid:
            return
        refused = [str(c) for c in codes if getattr(c, "is_failure", False)]
        if refused:
            # Still up (we can publish alarms), but some commands will not reach us.
            log.error("broker refused %d subscription(s) (check its ACL): %s",
                      len(refused), ", ".join(refused))
        self._connected.set()
        log.info("connected to %s", self.cfg.url)
        self._on_event(Connected())

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any,
                       props: Any = None) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        self._session_up = False
        if was:
            # A disconnect we asked for (a graceful stop) is not news; a lost link is.
            rc_failed = bool(getattr(rc, "is_failure", True))
            level = logging.WARNING if rc_failed else logging.INFO
            log.log(level, "lost the connection to %s: %s", self.cfg.url, rc)
        self._on_event(Disconnected(str(rc)))

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._on_event(Incoming(msg.topic, bytes(msg.payload), bool(msg.retain)))

    # -- the agent's side ----------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start(self) -> None:
        """Connect in the background; retries until the broker is reachable."""
        self._client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self._started = True
        self._run_network()

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> Sent:
        """Queue a publish (thread-safe). QoS 1 while offline is kept and sent on reconnect."""
        return Sent(self._client.publish(topic, payload, qos=qos, retain=retain))

    def stop(self, death: Outgoing | None, timeout: float) -> bool:
        """Graceful stop: publish the death ourselves, wait for it, DISCONNECT.

        Returns True when the death reached the broker (or none was asked for).
        """
        ok = True
        # A birth may be out before SUBACK, so a session counts, not `connected`:
        # otherwise a stop in that window would leave "online" retained.
        session = self._session_up or self.connected
        if death is not None and session:
            topic, payload, qos, retain = death
            ok = self.publish(topic, payload, qos, retain).wait(timeout)
        elif death is not None:
            ok = False   # offline: the broker's Will (same boot_id) speaks for us
        if self._started:
            self._client.disconnect()
            self._stop_network(timeout)
            self._started = False
        self._connected.clear()
        return ok

    # -- hooks: who drives paho's network side --------------------------------

    def _run_network(self) -> None:
        """Hook: start driving the client (connect, read, write, keepalive, back-off)."""
        self._client.loop_start()

    def _stop_network(self, timeout: float) -> None:
        """Hook: after DISCONNECT was queued, stop driving the client."""
        self._client.loop_stop()
