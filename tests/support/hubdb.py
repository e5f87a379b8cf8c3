"""Real databases for hub tests: a SQLite file and the machine's PostgreSQL.

Import the fixtures into a test module (`from tests.support.hubdb import db_url, pg_database`).
`db_url` is parametrized over both databases, each test starting from an empty
schema. PostgreSQL: one uniquely named database per test session, dropped at the
end; its address comes from $TIENGMO_TEST_PG_ADMIN (default: trust auth as
`postgres` on 127.0.0.1:5432).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PG_ADMIN = os.environ.get("TIENGMO_TEST_PG_ADMIN",
                          "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_db(admin_url: str, name: str) -> str:
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session (dropped afterwards)."""
    name = f"tiengmo_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_db(PG_ADMIN, name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
