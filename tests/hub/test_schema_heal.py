"""The database comes back empty (dropped and created again): the FIRST write that
finds the tables gone migrates the schema again, whichever path it came by.

The alarm lane opens its own unit of work (hub.alarm_batch, not Database.retried);
before this was tested, only writes through `retried` healed, so the alarms waited,
failing fast, until some other write happened to come (seen: 31 s and 63 s in the
PostgreSQL fault run, tests/faults/test_pg_heals.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

import protocol
from hub.store import Store

pytestmark = pytest.mark.quick

REGISTRY = {"areas": [{"path": "vn/a", "name": "A"}],
            "nodes": [{"id": "n1", "area": "vn/a"}, {"id": "n2", "area": "vn/a"}]}


def _drop_everything(db: Path) -> None:
    con = sqlite3.connect(db)
    tables = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    con.execute("PRAGMA foreign_keys = OFF")
    for t in tables:
        con.execute(f'DROP TABLE "{t}"')
    con.commit()
    con.close()


def test_a_unit_of_work_that_finds_the_tables_gone_migrates_again(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    reg = protocol.parse_registry(REGISTRY)
    store = Store.open(f"sqlite:///{db}")
    try:
        store.heal_with(reg)
        store.nodes.sync_registry(reg)
        _drop_everything(db)

        # One write by the alarm lane's path (store.unit, no retry): it fails...
        with pytest.raises(OperationalError, match="no such table"), \
                store.unit(urgent=True) as uow:
            uow.nodes.get("n1")
        # ...but the schema is back at once, and the registry with it, and it says so:
        # the node's re-send (the next write) is stored.
        store.db.health.retry_now()
        assert {n.id for n in store.nodes.find()} == {"n1", "n2"}
        kinds = [(t.kind, t.subject) for t in store.troubles.find()]
        assert kinds == [("database_recreated", "database")]
        with store.unit(urgent=True) as uow:
            assert uow.nodes.get("n1") is not None
    finally:
        store.close()
