"""An embedded MQTT broker for `tiengmo demo`: amqtt in its own thread, pip only.

`tiengmo demo` runs Mosquitto when it is installed (tiengmo/mosquitto_run.py) and
this broker only when it is not, so the demo works from `pip install` alone.
It embeds amqtt 0.12 with the fixes of tiengmo/amqtt_fixes.py; what amqtt does
and does not do for this system is measured by tests/test_embedded_broker.py
and written down in deploy/mosquitto/README.md ("The embedded demo broker").

Every client logs in (amqtt's anonymous mode drops persistent sessions, see
amqtt_fixes.NO_ANONYMOUS). amqtt verifies passwords on its event loop; its
default Argon2 parameters cost ~150 ms per CONNECT here, which would stall every
other client while a village of simulated nodes connects, so the demo's hashes
use light parameters (~7 ms). The demo listens on loopback only and its passwords
are random per run; production passwords live in Mosquitto, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from amqtt.broker import Broker
from pwdlib.hashers.argon2 import Argon2Hasher

from .amqtt_fixes import ALL_FIXES, NO_ANONYMOUS, SaferBroker

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
        fixes: Iterable[str] = ALL_FIXES,
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
        # All of them, always, but in tests that show what amqtt does without one.
        self._fixes = frozenset(fixes)
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
        # Only the password plugin: no AnonymousAuthPlugin (amqtt_fixes.NO_ANONYMOUS),
        # no $SYS publisher, no per-packet logger (it slows every message down for a
        # log nobody reads in the demo).
        plugins: dict[str, Any] = {
            "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(password_file)},
        }
        if NO_ANONYMOUS not in self._fixes:
            plugins["amqtt.plugins.authentication.AnonymousAuthPlugin"] = {
                "allow_anonymous": True}
        return {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self._requested_port}"},
            },
            "timeout_disconnect_delay": self._keepalive_grace_s,
            "plugins": plugins,
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
        broker = SaferBroker(config, fixes=self._fixes)
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
