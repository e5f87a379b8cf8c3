"""The alarm transaction on SQLite's own cursor (hub/store/alarm_cursor.py).

What operators and the rest of the hub rely on: the cursor reads the same rows,
with the same types, as SQLAlchemy did; a statement that fails on it fails as
SQLAlchemy would raise it (the race retry and the store's health depend on the
exception's class); and a batch stored on it leaves the same database as one
stored through SQLAlchemy Core.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from pytest_mock import MockerFixture
from sqlalchemy import event
from sqlalchemy.orm import Session

import protocol
from hub.alarm_batch import store_alarm_batch
from hub.correlation import Memory
from hub.store import Store, alarm_cursor
from hub.store.alarm_cursor import CoreStatements, SqliteStatements, statements_for

HAMLETS = ["bach-thong/vi-huong/na-sang", "bach-thong/vi-huong/ban-ven"]
REGISTRY = protocol.parse_registry({
    "areas": [{"path": h, "name": h.rsplit("/", 1)[-1]} for h in HAMLETS],
    "nodes": [{"id": f"n-{i}", "area": HAMLETS[i % 2]} for i in range(4)],
})
T0 = 1_700_000_000_000


def press(kind: str = "fire", alarm_id: str | None = None) -> protocol.Alarm:
    return protocol.Alarm(alarm_id or protocol.new_id(), protocol.Kind(kind), T0,
                          protocol.Source.BUTTON, 1, button=1)


def fill(store: Store) -> list[str]:
    """A few batches: new incidents, joins, an unknown node, a noisy window. Their ids."""
    items = [(f"n-{i % 4}", press(("fire", "theft")[i % 2]), T0 + i) for i in range(10)]
    items.append(("stranger", press(), T0 + 20))
    for k in range(0, len(items), 4):
        store_alarm_batch(store, items[k:k + 4], window_s=600, noisy_max_fanouts=3,
                          noisy_window_s=600, publish=None, memory=Memory())
    return [a.alarm_id for _, a, _ in items]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    s.nodes.sync_registry(REGISTRY)
    yield s
    s.close()


@contextmanager
def both(store: Store) -> Iterator[tuple[CoreStatements, CoreStatements]]:
    """The cursor's statements and Core's, on one connection in one transaction."""
    with Session(store.engine) as s, s.begin():
        conn = s.connection()
        fast = statements_for(conn)
        assert isinstance(fast, SqliteStatements)
        yield fast, CoreStatements(conn)


def typed(rows: Any) -> Any:
    """Rows with each value's type beside it: 1 is not True for the API's JSON."""
    if isinstance(rows, dict):
        return {k: (v, type(v)) for k, v in rows.items()}
    if isinstance(rows, (list, tuple)):
        return [typed(r) for r in rows]
    return rows, type(rows)


def test_the_cursor_reads_what_sqlalchemy_reads_with_the_same_types(store: Store) -> None:
    ids = fill(store)
    nodes = [f"n-{i}" for i in range(4)] + ["stranger", "nobody"]
    with store.engine.connect() as c:
        keys = [r[0] for r in c.exec_driver_sql(
            "SELECT corr_key FROM incidents WHERE corr_key IS NOT NULL")]
        incs = [r[0] for r in c.exec_driver_sql("SELECT incident_id FROM incidents")]
    assert keys and len(incs) >= 2
    with both(store) as (fast, core):
        assert typed(fast.nodes(nodes)) == typed(core.nodes(nodes))
        assert typed(fast.alarms([*ids, "missing"])) == typed(core.alarms([*ids, "missing"]))
        got = fast.incidents(keys, incs[:1])
        assert typed(got) == typed(core.incidents(keys, incs[:1]))
        assert got and all(type(r["fanned_out"]) is bool for r in got)
        assert typed(fast.fanned(nodes, T0 - 1)) == typed(core.fanned(nodes, T0 - 1))
        assert typed(fast.incident(incs[0])) == typed(core.incident(incs[0]))
        assert fast.incident("missing") is None and fast.alarms([]) == []


def rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    with store.engine.connect() as c:
        return {t: [tuple(r) for r in c.exec_driver_sql(f"SELECT * FROM {t} ORDER BY 1, 2")]
                for t in ("incidents", "alarms")} | {
            "seen": [tuple(r) for r in c.exec_driver_sql(
                "SELECT id, last_seen_ms FROM nodes ORDER BY id")],
            # what the triggers told the event stream; within one statement in the
            # table's row order (hub/store/alarm_cursor.py), so compared as a set
            "events": [tuple(r) for r in c.exec_driver_sql(
                "SELECT type, subject, count(*) FROM events GROUP BY 1, 2 ORDER BY 1, 2")]}


def limit_variables(store: Store, n: int) -> None:
    """SQLite's own cap on a statement's parameters (999 before 3.32), on every connection
    of `store`: the cursor's writes then take several statements each."""
    event.listen(store.engine, "connect",
                 lambda dbapi, _: dbapi.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, n))
    store.engine.dispose()


@pytest.mark.parametrize("variables", [None, 40], ids=["one-statement", "in-chunks"])
def test_batches_stored_on_the_cursor_leave_what_sqlalchemy_core_leaves(
        tmp_path: Path, mocker: MockerFixture, variables: int | None) -> None:
    """The same alarms (same ids), once on the cursor, once with Core forced; the cursor's
    writes in one statement each, or (SQLite's parameter cap at 40) two rows at a time."""
    ids = [protocol.new_id() for _ in range(11)]
    results = []
    for name, force_core in (("fast.db", False), ("core.db", True)):
        if force_core:
            mocker.patch.object(alarm_cursor, "SqliteStatements", CoreStatements)
        st = Store.open(f"sqlite:///{tmp_path / name}")
        if variables is not None:
            limit_variables(st, variables)
        st.nodes.sync_registry(REGISTRY)
        items = [(f"n-{i % 4}", press(("fire", "theft")[i % 2], ids[i]), T0 + i)
                 for i in range(11)]
        for k in range(0, 11, 4):
            store_alarm_batch(st, items[k:k + 4], window_s=600, noisy_max_fanouts=3,
                              noisy_window_s=600, publish=None, memory=Memory())
        # copies again, in one batch: counted on the stored rows, nothing joined twice
        store_alarm_batch(st, items[:3], window_s=600, noisy_max_fanouts=3,
                          noisy_window_s=600, publish=None, memory=Memory())
        results.append(rows(st))
        st.close()
    fast, core = results
    assert fast == core
    assert sum(r[8] for r in fast["incidents"]) == 11   # alarm_count: each alarm once


def test_a_statement_failing_on_the_cursor_is_raised_as_sqlalchemy_raises_it(
        store: Store) -> None:
    """A race on the alarm_id primary key must reach alarm_batch as IntegrityError (it
    retries the whole transaction then), not as the driver's own exception."""
    ids = fill(store)
    with Session(store.engine) as s, s.begin():
        fast = statements_for(s.connection())
        row = fast.alarms(ids[:1])[0]
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            fast.insert_alarms([row])


def test_a_statement_the_cursor_failed_is_answered_through_sqlalchemy(
        store: Store, mocker: MockerFixture) -> None:
    ids = fill(store)
    with Session(store.engine) as s, s.begin():
        fast = statements_for(s.connection())
        assert isinstance(fast, SqliteStatements)
        want = fast.alarms(ids)
        broken = mocker.MagicMock(wraps=fast.raw)
        broken.in_transaction = True
        broken.execute.side_effect = sqlite3.OperationalError("disk I/O error")
        mocker.patch.object(fast, "raw", broken)
        assert fast.alarms(ids) == want
        assert broken.execute.call_count == 1
        fast.seen({"n-0": T0 + 10_000})   # a write, too: answered, and applied
        assert broken.execute.call_count == 2
        assert s.connection().exec_driver_sql(
            "SELECT last_seen_ms FROM nodes WHERE id = 'n-0'").scalar() == T0 + 10_000


class _Steps:
    """A sqlite3 connection that counts, per statement text, how often SQLite is asked
    to run it (`executemany` runs it once per row)."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self.runs: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def _count(self, text: str, n: int) -> None:
        head = " ".join(text.split()[:3])
        self.runs[head] = self.runs.get(head, 0) + n

    def execute(self, text: str, params: Any = ()) -> Any:
        self._count(text, 1)
        return self.raw.execute(text, params)

    def executemany(self, text: str, rows: Any) -> Any:
        rows = list(rows)
        self._count(text, len(rows))
        return self.raw.executemany(text, rows)


def test_a_batchs_writes_are_one_statement_each(store: Store, monkeypatch: Any) -> None:
    """Not one per row (`executemany`): each step of SQLite releases the GIL and takes
    it back against paho's thread; one statement a write raised ingest 9-24%
    (docs/alarm-lane.md, "Against a bare relay")."""
    fill(store)
    items = [(f"n-{i % 4}", press(("fire", "theft")[i % 2]), T0 + 1000 + i)
             for i in range(40)]   # joining the incidents `fill` opened
    made: list[_Steps] = []
    init = SqliteStatements.__init__

    def counting(self: SqliteStatements, conn: Any) -> None:
        init(self, conn)
        made.append(_Steps(self.raw))
        self.raw = made[-1]   # type: ignore[assignment]

    monkeypatch.setattr(SqliteStatements, "__init__", counting)
    outs, _ = store_alarm_batch(store, items, window_s=600, noisy_max_fanouts=None,
                                noisy_window_s=600, publish=None, memory=Memory())
    assert len(outs) == 40 and not any(o.new_incident for o in outs)
    assert len(made) == 1
    runs = made[0].runs
    assert (runs['INSERT INTO "alarms"'], runs['UPDATE "nodes" SET'],
            runs['UPDATE "incidents" SET']) == (1, 1, 1)
    assert "SAVEPOINT alarm_cursor" not in runs


def test_joining_twice_on_the_cursor_counts_once(store: Store) -> None:
    """A failed write in chunks may have applied some before it is run again (module
    docstring): the join's values are absolute, so the second run changes nothing."""
    fill(store)
    with Session(store.engine) as s, s.begin():
        fast = statements_for(s.connection())
        inc_id, count, last = s.connection().exec_driver_sql(
            "SELECT incident_id, alarm_count, last_alarm_ms FROM incidents "
            "ORDER BY alarm_count DESC LIMIT 1").one()
        joined = {inc_id: (2, last + 5, count + 2, last + 5)}
        fast.join(joined)
        fast.join(joined)
        after = fast.incident(inc_id)
        assert after is not None
        assert (after["alarm_count"], after["last_alarm_ms"]) == (count + 2, last + 5)


@pytest.mark.parametrize("variables", [None, 40], ids=["one-statement", "in-chunks"])
def test_a_full_disk_midway_through_the_alarm_rows_is_a_full_disk_not_a_race(
        store: Store, variables: int | None) -> None:
    """Rows the cursor applied before failing are rolled back before the statement runs
    again: else the re-run failed on its first row as a duplicate, a race to retry (five
    times) instead of the full disk that makes the store's health say `database`. In one
    statement, or in chunks of two rows (SQLite's parameter cap at 40), the first of
    which fits on the disk."""
    if variables is not None:
        limit_variables(store, variables)
    fill(store)
    new = [{"alarm_id": protocol.new_id(), "node_id": "n-0", "kind": "fire",
            "pressed_ms": T0, "received_ms": T0, "source": "button", "button": 1,
            "attempts": 1, "copies": 1, "incident_id": None, "area": HAMLETS[0],
            "unknown_node": False, "disabled_node": False, "fanout_held": False,
            "drill": False, "cancelled": False, "cancelled_ms": None, "late": False}
           for _ in range(400)]
    with Session(store.engine) as s, s.begin():
        conn = s.connection()
        fast = statements_for(conn)
        new_inc = conn.exec_driver_sql("SELECT incident_id FROM incidents LIMIT 1").scalar()
        for r in new:
            r["incident_id"] = new_inc
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
        conn.exec_driver_sql(f"PRAGMA max_page_count = {pages + 3}")
        with pytest.raises(sqlalchemy.exc.OperationalError, match="full"):
            fast.insert_alarms(new)
        s.rollback()


class _Dropped:
    """A sqlite3 connection on which every statement fails after SQLite rolled the
    whole transaction back (as it may on a full disk or an I/O error)."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def getlimit(self, category: int) -> int:
        return self.raw.getlimit(category)

    def execute(self, text: str, params: Any = ()) -> Any:
        if not text.startswith(("SAVEPOINT", "RELEASE")):
            self.raw.execute("ROLLBACK")
            raise sqlite3.OperationalError("disk I/O error")
        return self.raw.execute(text, params)


@pytest.mark.parametrize("fail", ["read", "write"])
def test_a_transaction_sqlite_rolled_back_is_never_run_on_without_it(
        store: Store, mocker: MockerFixture, fail: str) -> None:
    """Nothing runs again outside the transaction (it would commit on its own, half a
    batch): the error is raised as SQLAlchemy raises it, the connection invalidated."""
    ids = fill(store)
    with Session(store.engine) as s:
        conn = s.connection()
        fast = statements_for(conn)
        assert isinstance(fast, SqliteStatements)
        rerun = mocker.spy(conn, "exec_driver_sql")
        mocker.patch.object(fast, "raw", _Dropped(fast.raw))
        with pytest.raises(sqlalchemy.exc.OperationalError, match="disk I/O"):
            if fail == "read":
                fast.alarms(ids)
            else:
                fast.seen({"n-0": T0 + 10_000})
        assert rerun.call_count == 0 and conn.invalidated
        s.rollback()
    with store.engine.connect() as c:
        assert c.exec_driver_sql("SELECT last_seen_ms FROM nodes WHERE id = 'n-0'").scalar() \
            != T0 + 10_000
