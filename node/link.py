"""The node's MQTT link: the only module that imports paho.

What it guarantees (PROTOCOL.md, Transport and State):
- the Last Will (retained death with this boot's boot_id) is set before any
  connect, and the retained birth is published on every successful connect;
- the node's subscriptions are renewed on every connect;
- reconnects back off exponentially, never waiting more than
  `reconnect_max_s` (≤ 10 s) between tries;
- a refused CONNACK is not a connection (nothing is published or marked up);
- callbacks only hand events to the agent's queue (no work on paho's thread);
- TCP_NODELAY, so a one-packet alarm is not held back by Nagle's algorithm.

For the simulator it can cut the network (drop the socket without a
DISCONNECT, so the broker fires the Will, and refuse to reconnect until
restored) and crash (the same, then stop its thread: what kill -9 leaves).

On a Pi each link runs paho's own network thread (`loop_start`). A simulated
fleet of thousands may instead hand its links to one `NetLoop` per process
(firmware_sim/netloop.py): paho's external-loop API (socket callbacks plus
`loop_read`/`loop_write`/`loop_misc`) driven from a single epoll thread, which
does the connecting and the back-off too. The guarantees above hold the same.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .config import MqttConfig

log = logging.getLogger("tiengmo.node.link")


@dataclass(frozen=True, slots=True)
class Connected:
    """The broker accepted us; birth is out and subscriptions renewed."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The broker answered CONNACK with a failure (bad credentials, not authorised...)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    payload: bytes
    retain: bool


LinkEvent = Connected | Disconnected | Refused | Incoming
Outgoing = tuple[str, bytes, int, bool]   # topic, payload, qos, retain


class _GatedClient(mqtt.Client):
    """paho's client with a gate on opening sockets, for a simulated network cut."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate_open = True

    def _create_socket_connection(self) -> socket.socket:
        if not self.gate_open:
            raise ConnectionRefusedError("network cut (simulated)")
        return super()._create_socket_connection()


class NetLoop(Protocol):
    """A network loop shared by many links; every method may be called from any thread."""

    def attach(self, link: Link) -> None:
        """Take over `link`: connect it (perhaps after others), keep it connected."""

    def watch(self, link: Link, sock: Any) -> None:
        """`link` opened `sock`: watch it for reading."""

    def unwatch(self, link: Link, sock: Any) -> None:
        """`sock` is about to close: stop watching it; reconnect if the link still wants to."""

    def want_write(self, link: Link) -> None:
        """`link` has bytes queued: watch its socket for writing until they are out."""

    @property
    def connect_timeout_s(self) -> float:
        """How long one connect (TCP, then TLS) may block the loop's thread."""
        ...


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
                 on_event: Callable[[LinkEvent], None],
                 net_loop: NetLoop | None = None) -> None:
        self.cfg = cfg
        self._net = net_loop
        self._wanted = False            # shared loop: keep (re)connecting while True
        # Shared loop: serialises its connect and birth (io_connect, _on_connect) with
        # stop/crash on other threads, so a link stopped mid-connect never comes up.
        self._io_lock = threading.Lock()
        self._retry_s = cfg.reconnect_min_s
        self._sock_closed = threading.Event()
        self._birth = birth
        self._subs = subscriptions
        self._on_event = on_event
        self._connected = threading.Event()
        self._started = False
        self._sub_mid = -1
        self._session_up = False   # CONNACK accepted (maybe before SUBACK)
        # clean_session=False: a QoS 1 command sent during a short blip is
        # queued by the broker and still delivered (and judged for expiry).
        c = _GatedClient(CallbackAPIVersion.VERSION2, client_id=client_id,
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
        if net_loop is not None:
            # The connect blocks the one thread every node of the process shares: a
            # broker that drops SYNs must not freeze them all for paho's 5 s default.
            c.connect_timeout = net_loop.connect_timeout_s
            c.on_socket_close = self._on_socket_close
            c.on_socket_register_write = self._on_register_write

    # -- paho callbacks (paho's thread: enqueue only) -------------------------

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        # AttributeError: not a TCP socket (e.g. a test double)
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._net is not None:
            self._sock_closed.clear()
            self._net.watch(self, sock)

    def _on_socket_close(self, client: Any, userdata: Any, sock: Any) -> None:
        assert self._net is not None
        self._net.unwatch(self, sock)
        self._sock_closed.set()

    def _on_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        assert self._net is not None
        self._net.want_write(self)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        if rc.is_failure:
            # Refused: not a connection. paho drops the socket and retries.
            self._connected.clear()
            log.warning("broker %s refused the connection: %s", self.cfg.url, rc)
            self._on_event(Refused(str(rc)))
            return
        # Subscriptions, then the birth, go out here, in order, before anything
        # the agent sends: a node is never heard from without its birth first.
        # The broker handles one connection's packets in order, so once the hub
        # sees the birth the node is subscribed: a beacon or command the hub
        # sends in answer is never missed.
        with self._io_lock:
            if self._net is not None and not self._wanted:
                # Stopped or crashed while this connect was in flight: no birth (stop
                # sends DISCONNECT, crash drops the socket; nothing is retained "online").
                return
            self._session_up = True
            self._retry_s = self.cfg.reconnect_min_s
            _, self._sub_mid = client.subscribe(self._subs)
            topic, payload, qos, retain = self._birth()
            client.publish(topic, payload, qos=qos, retain=retain)
        # Up only once the broker confirms the subscriptions (on_subscribe).

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
        if self._net is not None:
            self._wanted = True
            self._sock_closed.set()
            self._net.attach(self)
        else:
            self._client.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> Sent:
        """Queue a publish (thread-safe). QoS 1 while offline is kept and sent on reconnect."""
        return Sent(self._client.publish(topic, payload, qos=qos, retain=retain))

    def stop(self, death: Outgoing | None, timeout: float) -> bool:
        """Graceful stop: publish the death ourselves, wait for it, DISCONNECT.

        Returns True when the death reached the broker (or none was asked for).
        """
        ok = True
        if self._net is not None and self._started:
            # After this no connect starts and no birth goes out (io_connect and
            # _on_connect check `_wanted` under the lock); a connect in flight has
            # finished, so its socket is open and DISCONNECT follows its CONNECT.
            with self._io_lock:
                self._wanted = False
                session = self._session_up or self.connected
        else:
            session = self._session_up or self.connected
        # A birth may be out before SUBACK, so a session counts, not `connected`:
        # otherwise a stop in that window would leave "online" retained.
        if death is not None and session:
            topic, payload, qos, retain = death
            ok = self.publish(topic, payload, qos, retain).wait(timeout)
        elif death is not None:
            ok = False   # offline: the broker's Will (same boot_id) speaks for us
        if self._started:
            self._wanted = False
            self._client.disconnect()
            if self._net is None:
                self._client.loop_stop()
            elif not self._sock_closed.wait(timeout):
                self._drop_socket()   # DISCONNECT not flushed: the shared loop closes it
            self._started = False
        self._connected.clear()
        return ok

    def _drop_socket(self) -> None:
        sock: Any = self._client.socket()
        if sock is not None:
            # A TCP close with no DISCONNECT: to the broker this is a lost
            # client, so it publishes the Will.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Simulated network loss: drop the socket, refuse reconnects until `restore`."""
        self._client.gate_open = False
        self._drop_socket()

    def restore(self) -> None:
        """End a simulated network loss; the next back-off retry reconnects."""
        self._client.gate_open = True

    def crash(self) -> None:
        """What kill -9 leaves behind: socket gone without DISCONNECT, thread stopped."""
        with self._io_lock:   # a connect in flight finishes first; none starts after
            self._client.gate_open = False
            self._wanted = False
        self._drop_socket()
        if self._started:
            if self._net is None:
                self._client.loop_stop()
            self._started = False
        self._connected.clear()

    # -- a shared loop's side (firmware_sim/netloop.py; its one thread only) --

    @property
    def io_wanted(self) -> bool:
        """True while the link should be (re)connected."""
        return self._wanted

    def io_connect(self) -> bool:
        """Open the connection and send CONNECT (the socket is watched via `watch`).

        False when the attempt failed at once (refused, network cut): try again
        after `io_retry_delay()`.
        """
        with self._io_lock:
            if not self._wanted:
                return False   # stopped or crashed since the loop picked this link
            try:
                self._client.reconnect()
            except OSError as exc:
                log.debug("connect to %s failed: %s", self.cfg.url, exc)
                return False
        return True

    def io_abort(self) -> bool:
        """Close a socket the loop could not watch (no DISCONNECT); True if one was open."""
        if self._client.socket() is None:
            return False
        self._client._sock_close()   # paho's own close: on_socket_close -> unwatch
        return True

    def io_retry_delay(self) -> float:
        """The next back-off delay: doubles from reconnect_min_s up to reconnect_max_s."""
        delay = self._retry_s
        self._retry_s = min(self.cfg.reconnect_max_s, self._retry_s * 2)
        return delay

    def io_read(self) -> None:
        self._client.loop_read()
        sock = self._client.socket()
        # TLS may hold decrypted bytes that select() cannot see.
        while isinstance(sock, ssl.SSLSocket) and sock.pending():
            self._client.loop_read()
            sock = self._client.socket()

    def io_write(self) -> bool:
        """Write what is queued; True while more is waiting."""
        self._client.loop_write()
        return self._client.socket() is not None and self._client.want_write()

    def io_wants_write(self) -> bool:
        return self._client.socket() is not None and self._client.want_write()

    def io_misc(self) -> None:
        """Keepalive (PINGREQ) and the broker's silence check, as paho's own loop does."""
        self._client.loop_misc()
