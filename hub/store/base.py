"""The store's unit of work: sessions, transactions, the writer gate, retries, the clock.

Every repository (hub.store.alarms, incidents, nodes, records, auth, history,
hub.integrations.store) is a plain class that receives one `Work`: either the
`Database` (each call of the repository is its own transaction, retried whole
on a constraint race) or a `Unit` (one transaction already open, shared by every
repository bound to it, committed or rolled back as a whole by whoever opened
it: `Store.unit()` / `Store.transaction()`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from protocol.timing import wall_ms

from ..db.engine import READ_ONLY, SQLITE_BUSY_TIMEOUT_MS
from ..db.migrate import current_revision, head_revision, upgrade
from ..errors import StoreError
from .health import StoreHealth, describe, lock_wait, schema_missing

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
        # Can the database be written now, and why not (hub/store/health.py, /healthz).
        self.health = StoreHealth()
        # Called after the schema was found gone and migrated again (the database was
        # dropped and created again): Store.heal_with puts the registry back and says so.
        self.on_recreated: Callable[[], None] | None = None
        self._heal_lock = threading.RLock()   # on_recreated writes, and may land here again
        # The thread migrating the database again: until it has put the registry back,
        # other writers fail fast (an alarm stored meanwhile would be from an "unknown
        # node", and not sound); the nodes re-send.
        self._healer: int | None = None

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
        block ends, rolled back if it raises. Not retried: see `retried`.

        Its outcome is the store's health: a failure saying the database is unavailable
        is kept (and makes writes fail fast for a moment, see StoreHealth) until a
        write commits again."""
        healer = self._healer
        if healer is not None and healer != threading.get_ident():
            raise StoreError("database unavailable: being created again (schema, registry)")
        reason = self.health.fail_fast()
        if reason is not None:
            raise StoreError(f"database unavailable: {reason}")
        if self.health.file_failure:
            self._close_all_connections()
        try:
            if self.gate is None:
                with Session(self._engine, expire_on_commit=False) as s, s.begin():
                    yield s
            else:
                with self.gate.hold(urgent), \
                        Session(self._engine, expire_on_commit=False) as s, s.begin():
                    yield s
        except DBAPIError as exc:
            self.health.failed(exc)
            if schema_missing(exc) and healer is None:
                # Every writer heals, not only those that go through `retried`: the
                # alarm lane opens its own unit and would otherwise wait, failing fast,
                # until some other write happened to migrate (seen: 30-60 s).
                self.heal_schema()
            raise
        if self.health.ok():
            log.warning("the database can be written again; storing resumes")

    def write_once(self, fn: Callable[[Session], T], urgent: bool = False) -> T:
        with self.session(urgent) as s:
            return fn(s)

    def write(self, fn: Callable[[Session], T], urgent: bool = False) -> T:
        """Run `fn` in one write transaction, retrying it whole on a constraint race."""
        return self.retried(lambda: self.write_once(fn, urgent))

    def retried(self, attempt: Callable[[], T]) -> T:
        """Run `attempt` (one whole transaction), again on a constraint race.

        Retrying the whole transaction (not just the failed statement) means the retry
        sees what the winner committed and decides again, e.g. joins its incident.
        A lock or statement timeout is not retried (it would wait as long again): the
        node's re-send is the retry. Tables gone: the schema is migrated again
        (`heal_schema`) and the transaction runs once more.
        """
        healed = False
        for n in range(1, MAX_ATTEMPTS + 1):
            try:
                return attempt()
            except IntegrityError as exc:
                if n == MAX_ATTEMPTS:
                    raise StoreError(f"constraint conflict persisted: {exc.orig}") from exc
                log.debug("constraint race, retrying (%d): %s", n, exc.orig)
            except DBAPIError as exc:
                if lock_wait(exc):
                    raise StoreError(f"database lock or statement timeout: {exc.orig}") \
                        from exc
                if schema_missing(exc):
                    if healed or not self.heal_schema():
                        raise StoreError(f"database schema missing: {exc.orig}") from exc
                    healed = True
                    continue
                if not isinstance(exc, OperationalError):
                    raise
                # PostgreSQL deadlock/serialization failures and SQLite busy after the
                # busy timeout: transient, worth another go.
                if n == MAX_ATTEMPTS:
                    raise StoreError(f"database busy or unavailable: {exc.orig}") from exc
                log.warning("database error, retrying (%d): %s", n, exc.orig)
                time.sleep(0.05 * n)
        raise AssertionError("unreachable")

    def _close_all_connections(self) -> None:
        """Close every connection to the SQLite file before the next try.

        SQLite shares one WAL index (-shm) per file among all connections of a process;
        one opened while the file could not be written maps it READ-ONLY, and it stays
        so while any connection to the file is open: every new connection then fails
        with "attempt to write a readonly database" too, long after the files are fine
        again. A closed connection with statements still referenced (by the tracebacks
        of the errors just logged) only closes when those are collected, hence the
        collection before the pool is emptied.
        """
        gc.collect()
        self._engine.dispose()

    def heal_schema(self) -> bool:
        """The tables are gone: bring the schema to head again (under the migration
        lock, so replicas migrate once) and call `on_recreated`. True if the schema is
        at head afterwards. Everything the database held is gone: users, history."""
        with self._heal_lock:
            outer, self._healer = self._healer, threading.get_ident()
            try:
                return self._heal_schema()
            finally:
                self._healer = outer

    def _heal_schema(self) -> bool:
        try:
            if current_revision(self._engine) == head_revision():
                return True   # healed meanwhile (another thread or replica)
            log.critical("NGUY CẤP / CRITICAL: the database has no tables (dropped and "
                         "created again?): migrating it again; its users and history "
                         "are gone")
            upgrade(self._engine)
        except Exception as exc:   # the database is still not there: later
            log.error("cannot migrate the database again yet: %s", describe(exc))
            return False
        self.node_rows.clear()
        self.health.retry_now()
        if self.on_recreated is not None:
            try:
                self.on_recreated()
            except Exception:
                log.exception("after migrating the database again")
        return True


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
