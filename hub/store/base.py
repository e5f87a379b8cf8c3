"""The store's unit of work: sessions, transactions, the writer gate, retries, the clock.

Every repository (hub.store.alarms, incidents, nodes, records, auth, history,
hub.integrations.store) is a plain class that receives one `Work`: either the
`Database` (each call of the repository is its own transaction, retried whole
on a constraint race) or a `Unit` (one transaction already open, shared by every
repository bound to it, committed or rolled back as a whole by whoever opened
it: `Store.unit()` / `Store.transaction()`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from protocol.timing import wall_ms

from ..db.engine import READ_ONLY, SQLITE_BUSY_TIMEOUT_MS
from ..errors import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

# A constraint race (two replicas opening one incident) resolves on the first retry;
# more than a few means something else is wrong and must surface.
MAX_ATTEMPTS = 5


class WriterGate:
    """One write transaction at a time in this process (SQLite), urgent ones first.

    SQLite has one writer. Without this, a writer that finds the lock taken waits
    in SQLite's busy handler, which sleeps 1, 2, 5, 10, ... ms between tries: an
    alarm arriving while heartbeats are flushed waited for that sleep, not just for
    the flush. Here it waits on a condition that wakes it at the release, and goes
    before any non-urgent writer that is waiting. Other processes still meet
    SQLite's busy timeout. A writer that waits longer than `timeout_s` (a nested
    write would wait forever) goes on without the gate, as before it existed.
    """

    def __init__(self, timeout_s: float) -> None:
        self._cv = threading.Condition()
        self._busy = False
        self._urgent = 0
        self.timeout_s = timeout_s

    @contextmanager
    def hold(self, urgent: bool) -> Iterator[None]:
        with self._cv:
            if urgent:
                self._urgent += 1
                try:
                    got = self._cv.wait_for(lambda: not self._busy, self.timeout_s)
                finally:
                    self._urgent -= 1
            else:
                got = self._cv.wait_for(lambda: not self._busy and not self._urgent,
                                        self.timeout_s)
            if got:
                self._busy = True
        try:
            yield
        finally:
            if got:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()


class Work(Protocol):
    """What a repository needs: reads, writes and the hub's clock."""

    @property
    def engine(self) -> Engine: ...

    @property
    def node_rows(self) -> set[str]: ...

    def now_ms(self) -> int: ...

    def read(self) -> AbstractContextManager[Session]: ...

    def write(self, fn: Callable[[Session], T], urgent: bool = False) -> T: ...

    def write_once(self, fn: Callable[[Session], T], urgent: bool = False) -> T: ...


class Database:
    """One engine shared by every repository; each call its own transaction."""

    def __init__(self, engine: Engine, clock: Callable[[], int] | None = None) -> None:
        self._engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})
        # One gate per database, shared by every repository on it (accounts and the
        # integrations' tables too): SQLite has one writer for all of them.
        self.gate = (WriterGate(SQLITE_BUSY_TIMEOUT_MS / 1000)
                     if engine.dialect.name == "sqlite" else None)
        self._clock = clock or wall_ms
        # Node ids known to have a row: the heartbeat flush skips its SELECT for them.
        self.node_rows: set[str] = set()

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def reader(self) -> Engine:
        """The engine for read-only connections (no write lock taken on SQLite)."""
        return self._reader

    def now_ms(self) -> int:
        return self._clock()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self._reader, expire_on_commit=False) as s, s.begin():
            yield s

    @contextmanager
    def session(self, urgent: bool = False) -> Iterator[Session]:
        """One write transaction (behind the writer gate on SQLite): committed when the
        block ends, rolled back if it raises. Not retried: see `retried`."""
        if self.gate is None:
            with Session(self._engine, expire_on_commit=False) as s, s.begin():
                yield s
            return
        with self.gate.hold(urgent), Session(self._engine, expire_on_commit=False) as s, \
                s.begin():
            yield s

    def write_once(self, fn: Callable[[Session], T], urgent: bool = False) -> T:
        with self.session(urgent) as s:
            return fn(s)

    def write(self, fn: Callable[[Session], T], urgent: bool = False) -> T:
        """Run `fn` in one write transaction, retrying it whole on a constraint race."""
        return self.retried(lambda: self.write_once(fn, urgent))

    @staticmethod
    def retried(attempt: Callable[[], T]) -> T:
        """Run `attempt` (one whole transaction), again on a constraint race.

        Retrying the whole transaction (not just the failed statement) means the retry
        sees what the winner committed and decides again, e.g. joins its incident.
        """
        for n in range(1, MAX_ATTEMPTS + 1):
            try:
                return attempt()
            except IntegrityError as exc:
                if n == MAX_ATTEMPTS:
                    raise StoreError(f"constraint conflict persisted: {exc.orig}") from exc
                log.debug("constraint race, retrying (%d): %s", n, exc.orig)
            except OperationalError as exc:
                # PostgreSQL deadlock/serialization failures and SQLite busy after the
                # busy timeout: transient, worth another go.
                if n == MAX_ATTEMPTS:
                    raise StoreError(f"database busy or unavailable: {exc.orig}") from exc
                log.warning("database error, retrying (%d): %s", n, exc.orig)
                time.sleep(0.05 * n)
        raise AssertionError("unreachable")


class Unit:
    """One open write transaction: every repository bound to it reads and writes in it.

    Its writes neither open a transaction nor retry: the one who opened the unit
    commits it, or retries it whole (`Store.transaction`).
    """

    def __init__(self, db: Database, session: Session) -> None:
        self._db = db
        self.session = session

    @property
    def engine(self) -> Engine:
        return self._db.engine

    @property
    def node_rows(self) -> set[str]:
        return self._db.node_rows

    def now_ms(self) -> int:
        return self._db.now_ms()

    @contextmanager
    def read(self) -> Iterator[Session]:
        yield self.session

    def write(self, fn: Callable[[Session], T], urgent: bool = False) -> T:
        return fn(self.session)

    def write_once(self, fn: Callable[[Session], T], urgent: bool = False) -> T:
        return fn(self.session)
