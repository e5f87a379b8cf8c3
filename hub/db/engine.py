"""Engines for SQLite and PostgreSQL with the settings an alarm log needs.

SQLite: WAL (readers never block the writer), `synchronous=FULL` (an alarm
acked `received` survives a power cut, a daily event in the hills), a busy
timeout instead of "database is locked", and write transactions opened with
`BEGIN IMMEDIATE` so two writers queue up front instead of failing half-way
when they both try to upgrade a read lock. PostgreSQL URLs written
`postgresql://` use the psycopg 3 driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from ..errors import StoreError

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option marking a read-only connection: it may begin a deferred transaction.
READ_ONLY = "tiengmo_read_only"


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` -> psycopg 3; anything else as written."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; creates a SQLite file's directory if it is missing."""
    try:
        parsed = make_url(normalize_url(url))
    except Exception as exc:  # sqlalchemy raises ArgumentError and friends
        raise StoreError(f"db_url {url!r} is not a database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise StoreError("db_url: an in-memory SQLite database cannot be shared between "
                             "connections; give a file (sqlite:///path/hub.db)")
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        _sqlite_setup(engine)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)
    raise StoreError(f"db_url {url!r}: only sqlite and postgresql are supported")


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own implicit
        # BEGIN is DEFERRED and skips DDL), so schema changes are transactional too.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: Any) -> None:
        # A connection that hit a full disk or an I/O error mid-transaction can be
        # left unusable ("database or disk is full" on every later statement, even
        # once space is back). Treat it as a lost connection: SQLAlchemy drops it
        # from the pool and the next transaction opens a fresh one.
        text = str(ctx.original_exception).lower()
        if "disk is full" in text or "disk i/o error" in text:
            ctx.is_disconnect = True

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
