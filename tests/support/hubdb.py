"""Real databases for hub tests: a SQLite file and the machine's PostgreSQL.

Import the fixtures into a test module (`from tests.support.hubdb import db_url, pg_database`).
`db_url` is parametrized over both databases, each test starting from an empty
schema. PostgreSQL: one uniquely named database per test session (per xdist worker:
the name carries the worker, the process and a random tail), dropped at the end; its
address comes from $TIENGMO_TEST_PG_ADMIN (default: trust auth as `postgres` on
127.0.0.1:5432).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

PG_ADMIN = os.environ.get("TIENGMO_TEST_PG_ADMIN",
                          "postgresql://postgres@127.0.0.1:5432/postgres")


def worker() -> str:
    """This xdist worker's id ("gw0", ...), "main" without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _with_db(admin_url: str, name: str) -> str:
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


@contextmanager
def fresh_pg_database(prefix: str) -> Iterator[str]:
    """URL of a new, empty PostgreSQL database named `prefix` + this worker + a random
    tail (unique across xdist workers and concurrent runs); dropped after."""
    name = f"{prefix}{worker()}_{os.getpid()}_{secrets.token_hex(4)}"
    assert len(name) <= 63, name    # PostgreSQL would cut a longer name silently
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_db(PG_ADMIN, name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session (dropped afterwards)."""
    with fresh_pg_database("tiengmo_test_") as url:
        yield url


def reset_pg(url: str) -> None:
    """Drop everything in the database (a test starts from nothing, as a new install)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
        conn.execute("DROP FUNCTION IF EXISTS audit_append_only()")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL, once on SQLite (a temp file), once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    url: str = request.getfixturevalue("pg_database")
    reset_pg(url)
    return url


# ---- the hub harness on both databases ---------------------------------------
#
# Tests that start a hub through tests.support.hub_harness (hub_settings, running_hub)
# get a SQLite file under tmp_path. A conftest that imports `hub_database` and calls
# `parametrize_hub_database` from its `pytest_generate_tests` runs each such test
# twice, the second time with that file swapped for the session's PostgreSQL database
# (emptied first). Tests that already take `db_url` choose for themselves.

HUB_DATABASES = ("sqlite", "postgresql")


def parametrize_hub_database(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    module = metafunc.module
    starts_a_hub = getattr(module, "hub_settings", None) is not None or "hub" in names
    # A module may say `HUB_DATABASES = ("sqlite",)`; one that reads the SQLite file
    # itself (it imports sqlite3) is taken to be about SQLite.
    default = ("sqlite",) if getattr(module, "sqlite3", None) is not None else HUB_DATABASES
    kinds = tuple(getattr(module, "HUB_DATABASES", default))
    if ("hub_database" in names and "broker" in names and "db_url" not in names
            and starts_a_hub and len(kinds) > 1):
        metafunc.parametrize("hub_database", kinds, indirect=True)


@pytest.fixture(autouse=True)
def hub_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> str:
    """Which database the hub harness gives this test's hubs: "sqlite" unless parametrized."""
    kind: str = getattr(request, "param", "sqlite")
    if kind == "postgresql":
        from tests.support import hub_harness

        url: str = request.getfixturevalue("pg_database")
        reset_pg(url)
        real = hub_harness.load_settings  # type: ignore[attr-defined]
        sqlite_here = f"sqlite:///{tmp_path}"

        def load(path: object = None, env: object = None, **overrides: object) -> object:
            if str(overrides.get("db_url", "")).startswith(sqlite_here):
                overrides["db_url"] = url
            return real(path, env, **overrides)  # type: ignore[arg-type]

        monkeypatch.setattr(hub_harness, "load_settings", load)
    return kind
