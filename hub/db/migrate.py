"""Run the Alembic migrations in hub/db/migrations programmatically, one process at a time.

Several hub replicas may start at once against one database. PostgreSQL: the
upgrade runs under a session-level advisory lock. SQLite: the whole upgrade is
one `BEGIN IMMEDIATE` transaction (SQLite DDL is transactional), so a second
process waits on the busy timeout, then finds the schema at head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from ..errors import MigrationError

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; this one spells "tiengmo" in ASCII so it is recognisable in pg_locks.
ADVISORY_LOCK_KEY = 0x7469656E676D6F


def alembic_config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # The hub's lock and statement timeouts (hub/db/engine.py) bound alarms, not
            # this: waiting for another replica's migration, or a long one, is fine.
            conn.execute(text("SET lock_timeout = 0"))
            conn.execute(text("SET statement_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            conn.commit()
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                conn.execute(text("RESET lock_timeout"))
                conn.execute(text("RESET statement_timeout"))
                conn.commit()
        else:
            with conn.begin():   # BEGIN IMMEDIATE (see engine.py): the write lock, held
                yield conn


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (default: head)."""
    try:
        with _locked(engine) as conn:
            command.upgrade(alembic_config(conn), revision)
    except MigrationError:
        raise
    except Exception as exc:
        raise MigrationError(f"cannot migrate the database to {revision}: {exc}") from exc


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Take the schema down to `revision` (default: base, i.e. drop everything)."""
    try:
        with _locked(engine) as conn:
            command.downgrade(alembic_config(conn), revision)
    except Exception as exc:
        raise MigrationError(f"cannot downgrade the database to {revision}: {exc}") from exc
