"""An embedded MQTT broker for `tiengmo demo`: amqtt in its own thread, pip only.

Production runs Mosquitto (deploy/mosquitto/); the demo must run from
`pip install` alone, so it embeds amqtt 0.12. What amqtt does and does not do
for this system is measured by tests/test_embedded_broker.py and written down
in deploy/mosquitto/README.md ("The embedded demo broker").

Two amqtt behaviours shape this module:

- While `allow_anonymous` is on, amqtt marks *every* session anonymous, even
  one that logged in, and an anonymous session never keeps QoS 1 messages
  while its client is away. The hub and the nodes rely on persistent sessions
  (clean_session=False), so anonymous access is off and every client of the
  demo gets a username and password.
- amqtt verifies passwords on its event loop. Its default Argon2 parameters
  cost ~150 ms per CONNECT here, which would stall every other client while a
  village of simulated nodes connects, so the demo's hashes use light
  parameters (~7 ms). The demo listens on loopback only and its passwords are
  random per run; production passwords live in Mosquitto, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session
from amqtt.utils import gen_client_id
from pwdlib.hashers.argon2 import Argon2Hasher

log = logging.getLogger(__name__)

# amqtt adds this many seconds to each client's keepalive before it gives up on
# a silent connection (and sends its Last Will). Without it amqtt drops a
# client after exactly one keepalive, racing the client's own PINGREQ; MQTT
# 3.1.1 says one and a half keepalives, which for the protocol's 15 s default
# is about 23 s (PROTOCOL.md rule 9).
DEFAULT_KEEPALIVE_GRACE_S = 8

_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 15.0


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker could not start or stop."""


def _drop_silent_client(self: BrokerProtocolHandler) -> None:
    """Close a connection that stayed silent past its keepalive (+ grace).

    amqtt 0.12.1's broker handler reads with the keepalive as a timeout but
    then does nothing (`handle_read_timeout` is `pass`), so a half-open link
    (a node that lost power or its cable) would stay "connected" forever and
    its Last Will would never go out. MQTT 3.1.1 [MQTT-3.1.2-24] says the
    server must disconnect it; closing it as abnormal makes amqtt publish the
    Will, exactly as for a socket that closed.
    """
    task = asyncio.ensure_future(self.handle_connection_closed())
    # Keep a reference until it is done, or the loop may drop the task early.
    _closing.add(task)
    task.add_done_callback(_closing.discard)


_closing: set[asyncio.Future[None]] = set()


def _enforce_keepalive() -> None:
    # Patched once per process, on the broker side only (the client side uses
    # another handler class); idempotent so two brokers in one process are fine.
    if BrokerProtocolHandler.handle_read_timeout is not _drop_silent_client:
        BrokerProtocolHandler.handle_read_timeout = _drop_silent_client


def hash_password(password: str) -> str:
    """An Argon2id hash in the format of amqtt's password file (light parameters, see above)."""
    return Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1).hash(password)


def write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """Write `username:hash` lines, the format amqtt's FileAuthPlugin reads."""
    lines = []
    for username, password in sorted(users.items()):
        if not username or ":" in username or "\n" in username:
            raise ValueError(f"broker user {username!r}: a username may not be empty or hold ':'")
        lines.append(f"{username}:{hash_password(password)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)


class _SaferBroker(Broker):  # type: ignore[misc]  # amqtt ships no type hints
    """amqtt's Broker with three fixes that PROTOCOL.md rule 8 and the nodes rely on.

    1. Authenticate before the CONNECT touches any session. amqtt 0.12.1 first
       deletes (clean session) or rewrites (persistent: will, username) the
       session stored under the CONNECT's client id, and only then checks the
       password, so a refused login with a node's id silently strips that
       node's subscriptions.
    2. The client id is the username, as Mosquitto's `use_username_as_clientid`
       makes it in production: no client can take over another's session.
    3. A new connection under a connected client id closes the old one first
       (Mosquitto's session takeover), so the old Will goes out *before* the
       new birth instead of overwriting it when the stale link times out.

    And two smaller ones: a client gets retained messages only for its own
    subscriptions (amqtt sends every connecting client the retained messages
    of *every* client's subscriptions), and messages queued for an offline
    persistent session are delivered with retain=0, as Mosquitto does (amqtt
    sets retain=1 on them, which would make a receiver treat a queued command
    or ack as an old retained state).
    """

    use_username_as_clientid = True

    async def _initialize_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, incoming = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager,
            )
        except (AMQTTError, MQTTError, NoDataError) as exc:
            # init_from_connect has already answered a malformed CONNECT.
            await writer.close()
            raise AMQTTError(f"bad CONNECT from {remote_address}:{remote_port}: {exc}") from exc
        if not await self._authenticate(incoming, self.listeners_config["default"]):
            handler.attach(incoming, reader, writer)
            await handler.mqtt_connack_authorize(False)
            await writer.close()
            raise AMQTTError(f"login refused for {incoming.username!r} from {remote_address}")
        if self.use_username_as_clientid and incoming.username:
            incoming.client_id = incoming.username

        client_id = incoming.client_id
        old = self._sessions.get(client_id) if client_id else None
        if old is not None and old[0].transitions.is_connected():
            log.info("client %r connected again; closing its previous connection", client_id)
            await old[1].handle_connection_closed()
            await old[1].stop()
            # Let the old connection's loop finish its disconnect (Will, state)
            # before this one attaches, or it would mark a reused persistent
            # session disconnected after the new client is already on it.
            for _ in range(500):
                if not old[0].transitions.is_connected():
                    break
                await asyncio.sleep(0.01)

        # From here on, amqtt 0.12.1's own session handling, unchanged.
        session = incoming
        if incoming.clean_session:
            if client_id:
                await self._delete_session(client_id)
            else:
                incoming.client_id = gen_client_id()
            incoming.parent = 0
        elif client_id in self._sessions:
            session, _ = self._sessions[client_id]
            session.will_flag = incoming.will_flag
            session.will_message = incoming.will_message
            session.will_topic = incoming.will_topic
            session.will_qos = incoming.will_qos
            session.will_retain = incoming.will_retain
            session.keep_alive = incoming.keep_alive
            session.username = incoming.username
            session.password = incoming.password
            session.parent = 1
        else:
            incoming.parent = 0
        grace = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(grace, int):
            session.keep_alive += grace
        return handler, session

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session,
    ) -> None:
        holders = self._subscriptions.get(subscription[0], [])
        if any(s.client_id == session.client_id for s, _ in holders):
            await super()._publish_retained_messages_for_subscription(subscription, session)

    async def _publish_session_retained_messages(self, session: Session) -> None:
        handler = self._get_handler(session)
        if handler is None:
            return
        tasks = []
        while not session.retained_messages.empty():
            queued = session.retained_messages.get_nowait()
            tasks.append(asyncio.ensure_future(
                handler.mqtt_publish(queued.topic, queued.data, queued.qos, retain=False),
            ))
        if tasks:
            await asyncio.wait(tasks)


class EmbeddedBroker:
    """amqtt on `host:port` (port 0 picks a free one), password login only.

    `start()` returns once the broker listens; `stop()` shuts it down and joins
    its thread. Every client must log in with one of `users` (name → password).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, str] | None = None,
        *,
        keepalive_grace_s: int = DEFAULT_KEEPALIVE_GRACE_S,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._users = dict(users or {})
        if not self._users:
            # A broker nobody can log in to is a configuration mistake, and an
            # anonymous one would silently drop persistent sessions.
            raise ValueError("EmbeddedBroker needs at least one user (name → password)")
        self._keepalive_grace_s = keepalive_grace_s
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Broker | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._workdir: Path | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedBrokerError("the embedded broker is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._port is not None

    def _config(self, password_file: Path) -> dict[str, Any]:
        return {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self._requested_port}"},
            },
            "timeout_disconnect_delay": self._keepalive_grace_s,
            # Only the password plugin: no AnonymousAuthPlugin (see the module
            # docstring), no $SYS publisher, no per-packet logger (it slows
            # every message down for a log nobody reads in the demo).
            "plugins": {
                "amqtt.plugins.authentication.FileAuthPlugin": {
                    "password_file": str(password_file),
                },
            },
        }

    def start(self) -> EmbeddedBroker:
        """Start the broker thread; return once it listens, or raise why it did not."""
        if self._thread is not None:
            raise EmbeddedBrokerError("the embedded broker is already started")
        self._workdir = Path(tempfile.mkdtemp(prefix="tiengmo-broker-"))
        password_file = self._workdir / "passwd"
        write_password_file(password_file, self._users)
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(
            target=self._run, args=(self._config(password_file),), name="tiengmo-broker",
            daemon=True,
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise EmbeddedBrokerError(f"embedded broker did not listen within {_START_TIMEOUT_S} s")
        if self._error is not None:
            self._thread.join(_STOP_TIMEOUT_S)
            self._thread = None
            self._cleanup_workdir()
            raise EmbeddedBrokerError(f"embedded broker failed to start: {self._error}") from (
                self._error
            )
        log.info("embedded MQTT broker listening on %s", self.url)
        return self

    def _run(self, config: dict[str, Any]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(config))
        except BaseException as exc:  # reported to start(), which is waiting
            self._error = exc
            self._ready.set()
        finally:
            # amqtt leaves per-client tasks behind after shutdown(); end them
            # here, or closing the loop prints "Event loop is closed" noise.
            leftover = asyncio.all_tasks(loop)
            for task in leftover:
                task.cancel()
            if leftover:
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            asyncio.set_event_loop(None)
            loop.close()

    async def _serve(self, config: dict[str, Any]) -> None:
        self._stopped = asyncio.Event()
        _enforce_keepalive()
        broker = _SaferBroker(config)
        await broker.start()
        self._broker = broker
        # With port 0 the OS chose the port; read it back from the listening socket.
        server = broker._servers["default"].instance
        sockets = getattr(server, "sockets", None) or ()
        self._port = int(sockets[0].getsockname()[1]) if sockets else self._requested_port
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await broker.shutdown()

    def stop(self) -> None:
        """Shut the broker down (clients see their connection close) and join its thread."""
        thread, loop, stopped = self._thread, self._loop, self._stopped
        if thread is None:
            return
        if loop is not None and stopped is not None and not loop.is_closed():
            # The loop may close between the check and the call.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopped.set)
        thread.join(_STOP_TIMEOUT_S)
        if thread.is_alive():
            log.warning("embedded broker thread did not stop within %s s", _STOP_TIMEOUT_S)
        self._thread = None
        self._loop = None
        self._broker = None
        self._port = None
        self._cleanup_workdir()

    def _cleanup_workdir(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
