"""Who runs the hub-wide timers (supervision, escalation) when several replicas share a database.

Exactly one replica leads at a time; the others keep a live view (every
replica receives every state and heartbeat, see hub.link) and take over when
the leader dies. The rule is the database's, not the broker's: the replicas
already share it, and it is what must not be written twice.

- PostgreSQL (`AdvisoryLockLeadership`): a dedicated connection holds the
  session-level advisory lock `pg_try_advisory_lock(LEADER_LOCK_KEY)`. The
  lock lives exactly as long as that session: a leader killed with SIGKILL,
  or whose host or network dies, loses its session (TCP keepalive and
  `tcp_user_timeout` bound how long PostgreSQL takes to notice a silent
  peer), and a standby retrying every `retry_s` gets the lock. The leader
  checks its connection every `retry_s`; a failed check, or no successful one
  for `lease_s`, is lost leadership at once (it stops acting before the
  server could hand the lock to someone else).
- SQLite (`FileLockLeadership`): `flock()` on `<database>.leader`. SQLite is
  one machine by nature (never on a network file system), so an OS lock is
  exact: the kernel releases it the moment the holder's process ends,
  however it ends, with no clock, lease row or schema change involved. The
  file also says who holds it, for people.

Both try once, synchronously, in `start()`, so a single hub leads from its
first tick; `stop()` releases at once so a restart or a peer does not wait.
Overlap is harmless anyway: every leader action is idempotent in the
database (one open trouble per kind+subject, escalation by compare-and-set).
`leadership_for(engine, holder)` picks the right one; `AlwaysLeader` is for
unit tests that build a hub around a store without a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from .db.migrate import ADVISORY_LOCK_KEY

log = logging.getLogger("tiengmo.hub.leadership")

# Next to the migration lock's key, so both are recognisable in pg_locks.
LEADER_LOCK_KEY = ADVISORY_LOCK_KEY + 1
RETRY_S = 2.0


class Leadership(Protocol):
    """The part of a leadership the hub's tick thread asks, every tick."""

    def is_leader(self) -> bool: ...


class ManagedLeadership(Leadership, Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class AlwaysLeader:
    """One hub and nothing to share: it always leads (unit tests, a hub without a database)."""

    def is_leader(self) -> bool:
        return True

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class _Retrying:
    """A thread that calls `_attempt()` every `retry_s` until stopped; `is_leader` reads a flag."""

    kind = "leadership"

    def __init__(self, holder: str, retry_s: float,
                 on_change: Callable[[bool], None] | None) -> None:
        self.holder = holder
        self.retry_s = retry_s
        self._on_change = on_change
        self._leader = False
        self._confirmed = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _attempt(self) -> bool:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    @property
    def lease_s(self) -> float:
        return 3 * self.retry_s

    def is_leader(self) -> bool:
        # A check thread stuck on a dead socket must not leave us leading on old news.
        return self._leader and time.monotonic() - self._confirmed < self.lease_s

    def _set(self, leader: bool) -> None:
        if leader:
            self._confirmed = time.monotonic()
        if leader == self._leader:
            return
        self._leader = leader
        log.warning("hub %s %s the %s", self.holder, "now leads: holds" if leader else
                    "no longer leads: lost", self.kind)
        if self._on_change is not None:
            self._on_change(leader)

    def _step(self) -> None:
        with self._lock:
            try:
                held = self._attempt()
            except Exception as exc:  # a database or file error is lost leadership, not a crash
                log.warning("hub %s: %s check failed: %s", self.holder, self.kind, exc)
                with contextlib.suppress(Exception):
                    self._release()
                held = False
            self._set(held)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._step()
        self._thread = threading.Thread(target=self._run, daemon=True, name="hub-leadership")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.retry_s):
            self._step()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.retry_s + 10)
            self._thread = None
        with self._lock:
            with contextlib.suppress(Exception):
                self._release()
            self._set(False)


class AdvisoryLockLeadership(_Retrying):
    """PostgreSQL: a session-level advisory lock on a connection of its own."""

    kind = "PostgreSQL advisory lock"

    def __init__(self, engine: Engine, holder: str, *, key: int = LEADER_LOCK_KEY,
                 retry_s: float = RETRY_S,
                 on_change: Callable[[bool], None] | None = None) -> None:
        super().__init__(holder, retry_s, on_change)
        self.key = key
        timeout_ms = int(max(1.0, retry_s) * 1000)
        # Not the store's pool: this one connection IS the lock, and must never be
        # handed to a request or recycled behind our back.
        self._engine = create_engine(
            engine.url, poolclass=NullPool,
            connect_args={"connect_timeout": max(2, int(retry_s)),
                          "application_name": f"tiengmo-leader-{holder}"[:63],
                          "keepalives": 1, "keepalives_idle": max(1, int(retry_s)),
                          "keepalives_interval": 1, "keepalives_count": 3,
                          "tcp_user_timeout": 3 * timeout_ms,
                          "options": f"-c statement_timeout={timeout_ms}"})
        self._conn: Connection | None = None

    def _attempt(self) -> bool:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if self._leader:
            # Holding already: prove the session (and so the lock) is still alive.
            self._conn.execute(text("SELECT 1"))
            return True
        got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
        return bool(got.scalar())

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._leader:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        finally:
            conn.close()   # closing the session releases the lock in any case

    def stop(self) -> None:
        super().stop()
        self._engine.dispose()


class FileLockLeadership(_Retrying):
    """SQLite: an exclusive flock() on a file beside the database."""

    kind = "leader file lock"

    def __init__(self, path: Path, holder: str, *, retry_s: float = RETRY_S,
                 on_change: Callable[[bool], None] | None = None) -> None:
        super().__init__(holder, retry_s, on_change)
        self.path = path
        self._fh: IO[str] | None = None

    @property
    def lease_s(self) -> float:
        return float("inf")   # the kernel holds it for us; nothing to renew

    def _attempt(self) -> bool:
        if self._fh is not None:
            return True
        # Not O_TRUNC: that would wipe the holder's name before we know we hold it.
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open: it IS the lock
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        except OSError:
            fh.close()
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"{self.holder} pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        fh.flush()
        self._fh = fh
        return True

    def _release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()   # closing the descriptor releases the flock

    def holder_note(self) -> str:
        """What the lock file says (who leads), for people and tests."""
        try:
            return self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return ""


def sqlite_leader_path(engine: Engine) -> Path:
    database = engine.url.database or ""
    return Path(database).expanduser().resolve().with_name(
        Path(database).name + ".leader")


def leadership_for(engine: Engine, holder: str, *, retry_s: float = RETRY_S,
                   on_change: Callable[[bool], None] | None = None) -> ManagedLeadership:
    """The leadership that fits the hub's database: safe with one replica and with many."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLockLeadership(engine, holder, retry_s=retry_s, on_change=on_change)
    if engine.dialect.name == "sqlite":
        return FileLockLeadership(sqlite_leader_path(engine), holder, retry_s=retry_s,
                                  on_change=on_change)
    raise ValueError(f"no leadership for a {engine.dialect.name} database")
