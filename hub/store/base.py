"""Shared plumbing of the store: sessions, transactions, retries, the clock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

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


class StoreBase:
    """Holds the engine and makes one transaction per public call."""

    _engine: Engine
    _reader: Engine
    _clock: Callable[[], int]
    _node_rows: set[str]
    _gate: WriterGate | None

    def _init_base(self, engine: Engine, clock: Callable[[], int] | None) -> None:
        self._engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})
        self._gate = (WriterGate(SQLITE_BUSY_TIMEOUT_MS / 1000)
                      if engine.dialect.name == "sqlite" else None)
        self._clock = clock or wall_ms
        # Node ids known to have a row: the heartbeat flush skips its SELECT for them.
        self._node_rows: set[str] = set()

    @property
    def engine(self) -> Engine:
        return self._engine

    def now_ms(self) -> int:
        return self._clock()

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._reader, expire_on_commit=False) as s, s.begin():
            yield s

    def _write_once(self, fn: Callable[[Session], T], urgent: bool = False) -> T:
        if self._gate is None:
            with Session(self._engine, expire_on_commit=False) as s, s.begin():
                return fn(s)
        with self._gate.hold(urgent), Session(self._engine, expire_on_commit=False) as s, \
                s.begin():
            return fn(s)

    def _write(self, fn: Callable[[Session], T], urgent: bool = False) -> T:
        """Run `fn` in one write transaction, retrying it whole on a constraint race.

        Retrying the whole function (not just the failed statement) means the retry
        sees what the winner committed and decides again, e.g. joins its incident.
        `urgent` (alarms and their commands) goes before other waiting writers.
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return self._write_once(fn, urgent)
            except IntegrityError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise StoreError(f"constraint conflict persisted: {exc.orig}") from exc
                log.debug("constraint race, retrying (%d): %s", attempt, exc.orig)
            except OperationalError as exc:
                # PostgreSQL deadlock/serialization failures and SQLite busy after the
                # busy timeout: transient, worth another go.
                if attempt == MAX_ATTEMPTS:
                    raise StoreError(f"database busy or unavailable: {exc.orig}") from exc
                log.warning("database error, retrying (%d): %s", attempt, exc.orig)
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")
