"""The simulator's node link: node/link.py's Link plus what only a simulation needs.

- A network cut (`cut`/`restore`): the socket drops without a DISCONNECT, so the
  broker fires the Will, and every reconnect is refused until restored.
- A crash (`crash`): the same, then the network side stops: what kill -9 leaves.
- An optional shared network loop (`NetLoop`, firmware_sim/netloop.py): a fleet of
  thousands hands its links to one epoll thread per process instead of one paho
  thread each. That thread drives paho's external-loop API (socket callbacks plus
  `loop_read`/`loop_write`/`loop_misc`) and does the connecting and back-off too;
  the link's guarantees (node/transport.py) hold the same.

The gate of the network cut is paho's public `on_pre_connect` callback: paho 2.x
calls it inside `reconnect()` just before it opens the socket and, while the
client's `suppress_exceptions` is False (its default since paho 1.5.1, when
eclipse-paho/paho.mqtt.python#507 stopped swallowing callback errors), lets an
exception from it out of `reconnect()`; tests/sim/test_simlink.py pins that.
A ConnectionRefusedError is an OSError, which both paho's own loop and the
shared loop treat as a failed attempt and retry after back-off.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any, Protocol

from node.config import MqttConfig
from node.link import Link
from node.transport import LinkEvent, Outgoing

log = logging.getLogger("tiengmo.node.link")   # the link's logger: one story per node


class NetLoop(Protocol):
    """A network loop shared by many links; every method may be called from any thread."""

    def attach(self, link: SimLink) -> None:
        """Take over `link`: connect it (perhaps after others), keep it connected."""

    def watch(self, link: SimLink, sock: Any) -> None:
        """`link` opened `sock`: watch it for reading."""

    def unwatch(self, link: SimLink, sock: Any) -> None:
        """`sock` is about to close: stop watching it; reconnect if the link still wants to."""

    def want_write(self, link: SimLink) -> None:
        """`link` has bytes queued: watch its socket for writing until they are out."""

    @property
    def connect_timeout_s(self) -> float:
        """How long one connect (TCP, then TLS) may block the loop's thread."""
        ...


class SimLink(Link):
    """A node link that can be cut and crashed, on paho's thread or on a shared `NetLoop`."""

    def __init__(self, cfg: MqttConfig, client_id: str, *, will: Outgoing,
                 birth: Callable[[], Outgoing], subscriptions: list[tuple[str, int]],
                 on_event: Callable[[LinkEvent], None],
                 net_loop: NetLoop | None = None) -> None:
        super().__init__(cfg, client_id, will=will, birth=birth,
                         subscriptions=subscriptions, on_event=on_event)
        self._net = net_loop
        self._gate_open = True
        self._wanted = False            # shared loop: keep (re)connecting while True
        # Shared loop: serialises its connect and birth (io_connect, _come_up) with
        # stop/crash on other threads, so a link stopped mid-connect never comes up.
        self._io_lock = threading.Lock()
        self._retry_s = cfg.reconnect_min_s
        self._sock_closed = threading.Event()
        c = self._client
        c.suppress_exceptions = False   # the gate's refusal must leave reconnect() (see above)
        c.on_pre_connect = self._gate
        if net_loop is not None:
            # The connect blocks the one thread every node of the process shares: a
            # broker that drops SYNs must not freeze them all for paho's 5 s default.
            c.connect_timeout = net_loop.connect_timeout_s
            c.on_socket_close = self._on_socket_close
            c.on_socket_register_write = self._on_register_write

    # -- fault injection ---------------------------------------------------------

    def _gate(self, client: Any, userdata: Any) -> None:
        if not self._gate_open:
            raise ConnectionRefusedError("network cut (simulated)")

    def cut(self) -> None:
        """Simulated network loss: drop the socket, refuse reconnects until `restore`."""
        self._gate_open = False
        self._drop_socket()

    def restore(self) -> None:
        """End a simulated network loss; the next back-off retry reconnects."""
        self._gate_open = True

    def crash(self) -> None:
        """What kill -9 leaves behind: socket gone without DISCONNECT, network side stopped."""
        # Said before the lock, so that a CONNACK read while we wait for it brings no
        # birth; the lock then lets a connect in flight finish (none starts after).
        self._gate_open = False
        self._wanted = False
        with self._io_lock:
            pass
        self._drop_socket()
        if self._started:
            if self._net is None:
                self._client.loop_stop()
            self._started = False
        self._connected.clear()

    def _drop_socket(self) -> None:
        sock: Any = self._client.socket()
        if sock is not None:
            # A TCP close with no DISCONNECT: to the broker this is a lost
            # client, so it publishes the Will.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- node/link.py's hooks ----------------------------------------------------

    def _come_up(self, client: Any) -> None:
        with self._io_lock:
            if self._net is not None and not self._wanted:
                # Stopped or crashed while this connect was in flight: no birth (stop
                # sends DISCONNECT, crash drops the socket; nothing is retained "online").
                return
            self._retry_s = self.cfg.reconnect_min_s
            super()._come_up(client)

    def _run_network(self) -> None:
        if self._net is None:
            super()._run_network()
            return
        self._wanted = True
        self._sock_closed.set()
        self._net.attach(self)

    def stop(self, death: Outgoing | None, timeout: float) -> bool:
        if self._net is not None and self._started:
            # After this no connect starts and no birth goes out (io_connect and
            # _come_up check `_wanted` under the lock). It is said before taking the
            # lock: the lock is not fair, and the loop's thread, released by a connect
            # that just finished, could otherwise read the CONNACK and send a birth
            # before this thread got the lock. Once we hold it, a connect in flight
            # has finished, so its socket is open and DISCONNECT follows its CONNECT.
            self._wanted = False
            with self._io_lock:
                pass
        return super().stop(death, timeout)

    def _stop_network(self, timeout: float) -> None:
        if self._net is None:
            super()._stop_network(timeout)
        elif not self._sock_closed.wait(timeout):
            self._drop_socket()   # DISCONNECT not flushed: the shared loop closes it

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        super()._on_socket_open(client, userdata, sock)
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
        # paho's own close, a private method (pinned by tests/sim/test_simlink.py): the
        # public disconnect() would send a DISCONNECT, and closing the socket behind
        # paho's back would skip on_socket_close, which is what tells the loop to retry.
        self._client._sock_close()
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
