"""Backup and restore on PostgreSQL (pg_dump / pg_restore), through the same commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.backup import BackupError, backup, restore
from hub.store import Store
from tests.support.hubdb import fresh_pg_database, pg_database, reset_pg

__all__ = ["pg_database"]


@pytest.fixture
def second_pg() -> Iterator[str]:
    with fresh_pg_database("tiengmo_restore_") as url:
        yield url


def test_a_postgresql_backup_restores_into_an_empty_database_and_only_there(
        tmp_path: Path, pg_database: str, second_pg: str) -> None:
    reset_pg(pg_database)
    with Store.open(pg_database) as store:
        store.troubles.open("node_missing", "na-sang-01", {"why": "test"}, 1_000)
        out = tmp_path / "hub.pgdump"
        assert backup(pg_database, out) > 0          # while the store is open and in use
        store.troubles.open("node_missing", "na-sang-02", {"why": "after"}, 2_000)
    restore(second_pg, out)
    with Store.open(second_pg) as restored:
        subjects = {t.subject for t in restored.troubles.find(open_only=True)}
    assert subjects == {"na-sang-01"}                # the snapshot, not what came after
    with pytest.raises(BackupError, match=r"not empty.*--force"):
        restore(second_pg, out)
    restore(second_pg, out, force=True)
