"""Shared plumbing of the store: sessions, transactions, retries, the clock."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from ..db.engine import READ_ONLY
from ..errors import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

# A constraint race (two replicas opening one incident) resolves on the first retry;
# more than a few means something else is wrong and must surface.
MAX_ATTEMPTS = 5


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class StoreBase:
    """Holds the engine and makes one transaction per public call."""

    _engine: Engine
    _reader: Engine
    _clock: Callable[[], int]
    _node_rows: set[str]

    def _init_base(self, engine: Engine, clock: Callable[[], int] | None) -> None:
        self._engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})
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

    def _write_once(self, fn: Callable[[Session], T]) -> T:
        with Session(self._engine, expire_on_commit=False) as s, s.begin():
            return fn(s)

    def _write(self, fn: Callable[[Session], T]) -> T:
        """Run `fn` in one write transaction, retrying it whole on a constraint race.

        Retrying the whole function (not just the failed statement) means the retry
        sees what the winner committed and decides again, e.g. joins its incident.
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return self._write_once(fn)
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
