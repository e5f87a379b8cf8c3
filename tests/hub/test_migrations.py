"""Migrations on SQLite and PostgreSQL: fresh, down and up again, models match, concurrent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from hub.db import current_revision, downgrade, head_revision, make_engine, normalize_url, upgrade
from hub.db.models import Base
from hub.store import Store
from tests.support.hubdb import db_url, pg_database  # noqa: F401 - fixtures

TABLES = {"alarms", "areas", "audit", "command_results", "commands",
          "incidents", "nodes", "troubles"}


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_fresh_upgrade_then_down_to_base_and_up_again(db_url: str) -> None:  # noqa: F811
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES
        downgrade(engine, "base")
        assert current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(db_url: str) -> None:  # noqa: F811
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, Base.metadata) == []
    finally:
        engine.dispose()


def test_store_open_migrates_and_reopens(db_url: str) -> None:  # noqa: F811
    Store.open(db_url).close()
    with Store.open(db_url) as store:          # a second start finds the schema at head
        assert store.alarms.count() == 0
        assert current_revision(store.engine) == head_revision()


def test_two_processes_migrating_at_once(db_url: str) -> None:  # noqa: F811
    code = ("import sys; from hub.store import Store; "
            "s = Store.open(sys.argv[1]); print(s.incidents.count()); s.close()")
    procs = [subprocess.Popen([sys.executable, "-c", code, db_url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=90) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "0"
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_postgresql_urls_use_psycopg_3() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///hub.db") == "sqlite:///hub.db"


def test_relative_sqlite_url_works_as_written(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Store.open("sqlite:///data/hub.db").close()
    assert (tmp_path / "data" / "hub.db").exists()
    assert "alarms" in tables("sqlite:///data/hub.db")


def test_every_migration_steps_up_and_down_on_its_own(db_url: str) -> None:  # noqa: F811
    """Each revision's upgrade and downgrade work one step at a time (not only base<->head)."""
    from alembic.script import ScriptDirectory

    from hub.db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    engine = make_engine(db_url)
    try:
        for rev in revisions:
            upgrade(engine, rev)
            assert current_revision(engine) == rev
        for below in [*reversed(revisions[:-1]), None]:
            downgrade(engine, below or "base")
            assert current_revision(engine) == below
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
