"""amqtt 0.12's broker, with what the nodes and the hub rely on fixed: one hook each.

Each fix overrides one method of amqtt's `Broker` or of its broker protocol
handler *in a subclass*, and leaves amqtt's own code to do the rest (nothing of
amqtt is patched process-wide, nothing of it is copied here). Each is named in
`ALL_FIXES`, so a test can build the broker without one and show amqtt's own
behaviour: tests/test_embedded_broker.py does, for every fix, and
deploy/mosquitto/README.md reports each one as an upstream bug.

- NO_ANONYMOUS (configuration, see tiengmo/broker.py): while `allow_anonymous`
  is on, amqtt marks *every* session anonymous, even one that logged in, and
  never queues QoS 1 messages for an anonymous session while its client is
  away. So only the password plugin is loaded, and every client logs in.
- LOGIN_FIRST: amqtt deletes (clean session) or rewrites (persistent: Will,
  username) the session stored under a CONNECT's client id *before* it checks
  the password, so a refused login with a node's id strips that node's
  subscriptions. Here the CONNECT is read and its login checked first; a
  refused client never reaches amqtt's session code.
- CLIENT_ID_IS_USERNAME: as Mosquitto's `use_username_as_clientid`, so no
  client can take another's session (PROTOCOL.md rule 8).
- TAKEOVER: a new connection under a connected client id closes the old one
  first (Will out), as Mosquitto does. amqtt does so only when it reuses a
  persistent session; after a clean-session CONNECT the old link stays open
  and its Will, sent when it finally times out, overwrites the new birth.
- KEEPALIVE: amqtt's broker handler ignores a read timeout (`pass`), so a
  half-open link (a node that lost power) stays "connected" forever and its
  Will never goes out. MQTT 3.1.1 [MQTT-3.1.2-24]: the server must disconnect.
- OWN_RETAINED: on CONNECT amqtt sends the client the retained messages
  matching *every* client's subscriptions; here only its own.
- STOP_HANGS: amqtt's handler stop cancels its reader once and waits for it
  forever; a cancel swallowed by Python 3.11's `wait_for` (it happens when a
  frozen process resumes: timeout, disconnect and data at once) hangs the
  client's loop with the Will sent and the socket open: a client connected to a
  session that routes nothing. Here the cancel is repeated, then the socket closed.
- QUEUED_NOT_RETAINED: amqtt delivers the messages it queued for an offline
  persistent session with retain=1; a receiver would take a queued command or
  ack for old retained state. Mosquitto sends them with retain=0.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Iterable
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session

log = logging.getLogger(__name__)

NO_ANONYMOUS = "no-anonymous"
LOGIN_FIRST = "login-first"
CLIENT_ID_IS_USERNAME = "client-id-is-username"
TAKEOVER = "takeover"
KEEPALIVE = "keepalive"
OWN_RETAINED = "own-retained"
QUEUED_NOT_RETAINED = "queued-not-retained"
STOP_HANGS = "stop-hangs"
ALL_FIXES = frozenset({NO_ANONYMOUS, LOGIN_FIRST, CLIENT_ID_IS_USERNAME, TAKEOVER, KEEPALIVE,
                       OWN_RETAINED, QUEUED_NOT_RETAINED, STOP_HANGS})
# STOP_HANGS: how often, and how long each time, to wait for a reader to end.
STOP_CANCEL_TRIES = 10
STOP_CANCEL_WAIT_S = 0.1
_CONNECT_FIXES = frozenset({LOGIN_FIRST, CLIENT_ID_IS_USERNAME, TAKEOVER})

# Set while amqtt drains a reconnecting session's offline queue (QUEUED_NOT_RETAINED):
# the publish tasks amqtt starts there inherit it, and no other delivery sees it.
_draining_offline_queue: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "tiengmo_draining_offline_queue", default=False)


class _ReplayReader(ReaderAdapter):  # type: ignore[misc]  # amqtt ships no type hints
    """A reader that first gives back bytes already read (the CONNECT), then the socket's.

    It lets amqtt's own CONNECT handling run, unchanged, on a CONNECT this broker
    has already read, checked and (client id) rewritten."""

    def __init__(self, head: bytes, rest: ReaderAdapter) -> None:
        self._head = head
        self._rest = rest

    async def read(self, n: int = -1) -> bytes:
        if not self._head:
            return bytes(await self._rest.read(n))
        if n < 0 or n >= len(self._head):
            chunk, self._head = self._head, b""
            return chunk if n < 0 or n == len(chunk) else chunk + await self._rest.read(
                n - len(chunk))
        chunk, self._head = self._head[:n], self._head[n:]
        return chunk

    def feed_eof(self) -> None:
        self._rest.feed_eof()


class _Handler(BrokerProtocolHandler):  # type: ignore[misc]
    """amqtt's broker protocol handler with the KEEPALIVE and QUEUED_NOT_RETAINED fixes."""

    def __init__(self, plugins_manager: Any, *, drop_silent: bool,
                 fixes: frozenset[str] = frozenset()) -> None:
        super().__init__(plugins_manager)
        self._drop_silent = drop_silent
        self._fixes = fixes
        self._closing: asyncio.Future[None] | None = None

    def handle_read_timeout(self) -> None:
        # Called by amqtt's reader loop when nothing arrived for keepalive + grace.
        # Closing as abnormal makes amqtt's broker publish the Will, as for a socket
        # that closed.
        if self._drop_silent and self._closing is None:
            self._closing = asyncio.ensure_future(self.handle_connection_closed())

    async def stop(self) -> None:
        # STOP_HANGS: amqtt's stop() cancels the reader task once and then waits for it
        # to finish, forever. Python 3.11's asyncio.wait_for swallows a cancel that lands
        # while the read it guards completes (gh-86296): after the process was frozen
        # (SIGSTOP, a suspended VM) the keepalive timeout, the disconnect and a client's
        # next packet all come at once, the reader reads on, and the broker's loop for
        # that client hangs in the disconnect: it has sent the Will (the hub "offline")
        # but never closes the socket, and the reader still answers PINGREQ. The client
        # stays "connected" to a session that routes nothing, for good (all 24 demo
        # nodes at `no_hub` until restarted). Cancel until the reader ends, then close
        # the socket if it still has not; amqtt's stop() then finds it done.
        if STOP_HANGS in self._fixes:
            await self._end_reader()
        await super().stop()

    async def _end_reader(self) -> None:
        task = self._reader_task
        if task is None or task is asyncio.current_task():
            return
        for attempt in range(STOP_CANCEL_TRIES):
            if task.done():
                return
            if attempt:
                log.warning("amqtt: the reader of %s ignored a cancel; cancelling again",
                            getattr(self.session, "client_id", "?"))
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_CANCEL_WAIT_S)
        if not task.done() and self.writer is not None:
            # Last resort: the socket closed under the reader ends its read with EOF.
            with contextlib.suppress(Exception):
                await self.writer.close()
            await asyncio.wait({task}, timeout=STOP_CANCEL_WAIT_S)

    async def mqtt_publish(self, topic: str, data: bytes | bytearray, qos: int | None,
                           retain: bool, ack_timeout: int | None = None) -> Any:
        if _draining_offline_queue.get():
            retain = False
        return await super().mqtt_publish(topic, data, qos, retain, ack_timeout)


class SaferBroker(Broker):  # type: ignore[misc]  # amqtt ships no type hints
    """amqtt's Broker with the fixes in `fixes` (all by default; see the module docstring)."""

    def __init__(self, config: dict[str, Any], *, fixes: Iterable[str] = ALL_FIXES) -> None:
        self.fixes = frozenset(fixes)
        unknown = self.fixes - ALL_FIXES
        if unknown:
            raise ValueError(f"unknown amqtt fixes: {', '.join(sorted(unknown))}")
        super().__init__(config)

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        if self.fixes & _CONNECT_FIXES:
            connect = await self._read_connect(reader, writer, remote_address)
            if LOGIN_FIRST in self.fixes:
                await self._refuse_unless_authenticated(connect, writer, remote_address)
            if CLIENT_ID_IS_USERNAME in self.fixes and connect.username:
                connect.payload.client_id = connect.username
            if TAKEOVER in self.fixes and connect.client_id:
                await self._close_previous_connection(connect.client_id)
            reader = _ReplayReader(bytes(connect.to_bytes()), reader)
        _amqtts, session = await super()._initialize_client_session(
            reader, writer, remote_address, remote_port)
        # amqtt's handler is new and not yet attached to anything: use ours instead.
        return _Handler(self.plugins_manager, drop_silent=KEEPALIVE in self.fixes,
                        fixes=self.fixes), session

    async def _read_connect(self, reader: ReaderAdapter, writer: WriterAdapter,
                            remote_address: str) -> ConnectPacket:
        try:
            connect = await ConnectPacket.from_stream(reader)
        except (AMQTTError, MQTTError, NoDataError, ValueError) as exc:
            await writer.close()
            raise AMQTTError(f"no CONNECT from {remote_address}: {exc}") from exc
        if connect is None or connect.payload is None or connect.variable_header is None:
            await writer.close()
            raise AMQTTError(f"no CONNECT from {remote_address}")
        return connect

    async def _refuse_unless_authenticated(self, connect: ConnectPacket, writer: WriterAdapter,
                                           remote_address: str) -> None:
        claimed = Session()
        claimed.client_id = connect.client_id
        claimed.username = connect.username
        claimed.password = connect.password
        if await self._authenticate(claimed, self.listeners_config["default"]):
            return
        await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
        await writer.close()
        raise AMQTTError(f"login refused for {connect.username!r} from {remote_address}")

    async def _close_previous_connection(self, client_id: str) -> None:
        old = self._sessions.get(client_id)
        if old is None or not old[0].transitions.is_connected():
            return
        log.info("client %r connected again; closing its previous connection", client_id)
        await old[1].handle_connection_closed()
        # Let the old connection's loop finish its disconnect (Will, state) before
        # amqtt attaches the new one, or it would mark a reused persistent session
        # disconnected after the new client is already on it.
        for _ in range(500):
            if not old[0].transitions.is_connected():
                return
            await asyncio.sleep(0.01)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session,
    ) -> None:
        if OWN_RETAINED in self.fixes:
            holders = self._subscriptions.get(subscription[0], [])
            if not any(s.client_id == session.client_id for s, _ in holders):
                return
        await super()._publish_retained_messages_for_subscription(subscription, session)

    async def _publish_session_retained_messages(self, session: Session) -> None:
        token = _draining_offline_queue.set(QUEUED_NOT_RETAINED in self.fixes)
        try:
            await super()._publish_session_retained_messages(session)
        finally:
            _draining_offline_queue.reset(token)
