"""Whether the hub's database can be written now, and why not (for /healthz and the log).

`StoreHealth` is told the outcome of every write transaction (hub.store.base):
a failure that says the database is unavailable (a file that cannot be written,
a lost connection, a lock or statement timeout, the schema gone) is kept as the
reason until a write commits again. While it is fresh, further writes fail at
once instead of each waiting out the same lock or timeout again (`fail_fast`):
the node's re-send is the retry (PROTOCOL.md rule 2), and one attempt per
`probe_s` still goes to the database, so the hub resumes within that of the
cause going away.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError, OperationalError

from ..db.engine import sqlite_file_failure

# PostgreSQL SQLSTATEs: lock_not_available (lock_timeout), query_canceled
# (statement_timeout), undefined_table (the schema is gone: the database was
# dropped and created again).
PG_LOCK_TIMEOUT, PG_QUERY_CANCELED, PG_UNDEFINED_TABLE = "55P03", "57014", "42P01"


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def lock_wait(exc: BaseException) -> bool:
    """A PostgreSQL lock_timeout or statement_timeout: retrying at once waits it again."""
    return _sqlstate(exc) in (PG_LOCK_TIMEOUT, PG_QUERY_CANCELED)


def schema_missing(exc: BaseException) -> bool:
    """The tables are gone (a database dropped and created again, an empty file)."""
    if _sqlstate(exc) == PG_UNDEFINED_TABLE:
        return True
    return "no such table" in str(getattr(exc, "orig", exc)).lower()


def unavailable(exc: BaseException) -> bool:
    """The database, not the transaction, is at fault: the store is degraded. Not: a
    constraint race, a PostgreSQL deadlock or serialization failure (class 40, retried),
    SQLite busy (the busy timeout is its wait, hub.store.base.WriterGate)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or lock_wait(exc) or schema_missing(exc) \
            or sqlite_file_failure(exc.orig):
        return True
    if not isinstance(exc, OperationalError):
        return False
    state = _sqlstate(exc) or ""
    # What is left: cannot connect (server down, database gone), and the like.
    return not state.startswith("40") and "database is locked" not in str(exc.orig)


def describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())   # psycopg's messages run over several lines
    return f"{type(orig).__name__}: {text}"[:300]


class StoreHealth:
    """The last write's verdict: None when it committed, else why not and since when."""

    def __init__(self, probe_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.probe_s = probe_s
        self._clock = clock
        self._lock = threading.Lock()
        self.error: str | None = None
        self.since: float | None = None     # clock time of the first failure in a row
        self._last_try: float | None = None
        self.failures = 0                   # in a row
        # The last failure was SQLite's file (read-only, I/O, full): before trying again
        # every connection to it must be closed (hub.store.base.Database.session).
        self.file_failure = False
        self.recoveries = 0                 # times the store came back (metrics, tests)

    def failed(self, exc: BaseException) -> None:
        if not unavailable(exc):
            return
        # A connection lost mid-transaction (pg_terminate_backend, a server restart) is
        # replaced at once: the next try may go ahead. The others would fail the same.
        lost_only = bool(getattr(exc, "connection_invalidated", False)) and not (
            lock_wait(exc) or schema_missing(exc) or sqlite_file_failure(
                getattr(exc, "orig", None)))
        with self._lock:
            now = self._clock()
            self.error = describe(exc)
            self.since = self.since if self.since is not None else now
            self._last_try = None if lost_only else now
            self.failures += 1
            self.file_failure = sqlite_file_failure(getattr(exc, "orig", None))

    def ok(self) -> bool:
        """A write committed; True if that ended a failure (the store healed)."""
        with self._lock:
            if self.error is None:
                return False
            self.error, self.since, self._last_try, self.failures = None, None, None, 0
            self.file_failure = False
            self.recoveries += 1
            return True

    def retry_now(self) -> None:
        """The cause was dealt with (the schema migrated again): the next write tries."""
        with self._lock:
            self._last_try = None

    def fail_fast(self) -> str | None:
        """The reason to fail a write at once (a failure younger than `probe_s`), else
        None: try the database. The caller that tries becomes the probe."""
        with self._lock:
            if self.error is None or self._last_try is None:
                return None
            now = self._clock()
            if now - self._last_try < self.probe_s:
                return self.error
            self._last_try = now   # this caller probes; the others keep failing fast
            return None
