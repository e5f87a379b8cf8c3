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


def make_engine(url: str, *, lock_timeout_s: float | None = None,
                statement_timeout_s: float | None = None, **kwargs: Any) -> Engine:
    """An engine for `url`; creates a SQLite file's directory if it is missing.

    PostgreSQL: `lock_timeout_s` and `statement_timeout_s` (None or 0: no limit) are
    set on every connection, so no transaction (an alarm's least of all) waits
    behind another session's lock, or on a stuck statement, longer than that: it
    fails, the hub says so (/healthz degraded), and the node's re-send tries again.
    """
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
        # A connection the server dropped (restart, pg_terminate_backend, the database
        # dropped) is found before use and replaced, not handed to a transaction.
        kwargs.setdefault("pool_pre_ping", True)
        _pg_options(kwargs, lock_timeout_s, statement_timeout_s)
        return create_engine(parsed, **kwargs)
    raise StoreError(f"db_url {url!r}: only sqlite and postgresql are supported")


# SQLite primary result codes of a file that cannot be written (docs/faults.md).
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 8, 10, 13, 14
_FILE_FAILURES = {_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN}
_FILE_FAILURE_TEXTS = ("readonly database", "disk i/o error", "disk is full",
                       "unable to open database file")


def sqlite_file_failure(exc: BaseException | None) -> bool:
    """True for a SQLite error saying the file cannot be written or read (read-only,
    I/O error, disk full, cannot open): the connection that met it is not reused."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _FILE_FAILURES
    text = str(exc).lower()
    return any(t in text for t in _FILE_FAILURE_TEXTS)


def _pg_options(kwargs: dict[str, Any], lock_timeout_s: float | None,
                statement_timeout_s: float | None) -> None:
    """Put the timeouts in the connection's startup options: the session's defaults, so
    `RESET` (hub/db/migrate.py lifts them while migrating) comes back to them."""
    opts = [f"-c {name}={round(v * 1000)}" for name, v in
            (("lock_timeout", lock_timeout_s), ("statement_timeout", statement_timeout_s))
            if v]
    if not opts:
        return
    args = dict(kwargs.get("connect_args") or {})
    args["options"] = " ".join([*([args["options"]] if args.get("options") else []), *opts])
    kwargs["connect_args"] = args


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
        # Treat the file-level failures as a lost connection: SQLAlchemy drops the
        # connection (and every other one in the pool) and the next transaction opens
        # a fresh one. Otherwise the hub never stores again after the cause goes:
        # - a connection opened while the file could not be written (read-only file or
        #   mount, a failing SD card) is silently opened READ-ONLY by SQLite and stays
        #   so: "attempt to write a readonly database" on every write, forever;
        # - one that hit a full disk or an I/O error mid-transaction can be left
        #   unusable ("database or disk is full" on every later statement).
        if sqlite_file_failure(ctx.original_exception):
            ctx.is_disconnect = True

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
