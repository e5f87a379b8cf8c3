"""The durable event log behind the live stream, on SQLite and PostgreSQL: the triggers
log every change worth showing (and not heartbeat noise), and the feed hands events out
in id order without skipping one that commits late (PostgreSQL's out-of-order commits)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

import protocol
from hub.events import EventFeed, StreamEvent
from hub.store import Store
from hub.store.history import EventRef
from tests.support.hub_harness import alarm
from tests.support.hubdb import db_url, pg_database, reset_pg  # noqa: F401 - fixtures


def logged(store: Store, after: int = 0) -> list[tuple[str, str]]:
    return [(e.type, e.subject) for e in store.history.events_after(after)]


def test_triggers_log_each_change_once_and_skip_heartbeat_noise(db_url: str) -> None:  # noqa: F811
    with Store.open(db_url) as store:
        store.nodes.register("na-sang-01", "bach-thong/na-sang")
        start = store.history.last_event_id()
        a = alarm("fire")
        out = store.alarms.record("na-sang-01", a, store.now_ms(), window_s=600)
        assert logged(store, start) == [("incident", out.incident_id), ("alarm", a.alarm_id)]
        mark = store.history.last_event_id()
        store.incidents.acknowledge(out.incident_id, "op", store.now_ms())
        store.incidents.acknowledge(out.incident_id, "op", store.now_ms())   # no change, no event
        assert logged(store, mark) == [("incident", out.incident_id)]
        mark = store.history.last_event_id()
        beat = protocol.Heartbeat(boot_id=1, seq=1, ts_ms=1, uptime_s=1, outbox=0)
        store.nodes.record_heartbeat("na-sang-01", beat, store.now_ms())      # unknown -> online
        for seq in (2, 3, 4):
            store.nodes.record_heartbeat("na-sang-01", protocol.Heartbeat(
                boot_id=1, seq=seq, ts_ms=seq, uptime_s=seq, outbox=0), store.now_ms())
        store.nodes.record_heartbeat("na-sang-01", protocol.Heartbeat(
            boot_id=1, seq=5, ts_ms=5, uptime_s=5, outbox=7), store.now_ms())  # backlog
        assert logged(store, mark) == [("node", "na-sang-01")] * 2
        mark = store.history.last_event_id()
        ref = store.troubles.open("node_offline", "na-sang-01")
        store.troubles.open("node_offline", "na-sang-01")                # already open
        store.troubles.clear("node_offline", "na-sang-01")
        assert logged(store, mark) == [("trouble", str(ref.id))] * 2
        mark = store.history.last_event_id()
        cmd = protocol.Command(protocol.new_id(), protocol.Action.PING, 1, 2)
        store.commands.record(cmd, "node", "na-sang-01")
        done = protocol.Result(cmd.cmd_id, protocol.ResultStatus.DONE, 3)
        store.commands.record_result("na-sang-01", done, store.now_ms())
        assert logged(store, mark) == [("command", cmd.cmd_id), ("command", cmd.cmd_id),
                                       ("node", "na-sang-01")]


def _identity(refs: list[EventRef]) -> list[StreamEvent]:
    return [StreamEvent(r.id, r.type, r.subject) for r in refs]


@pytest.fixture
def pg_store(pg_database: str) -> Iterator[Store]:  # noqa: F811
    reset_pg(pg_database)
    with Store.open(pg_database) as store:
        yield store


def _insert(conn: psycopg.Connection, subject: str) -> int:
    row = conn.execute("insert into events (ts_ms, type, subject) values (1, 'node', %s) "
                       "returning id", (subject,)).fetchone()
    assert row is not None
    return int(row[0])


def test_feed_waits_for_an_event_committed_out_of_order_then_gives_up_on_a_rollback(
        pg_store: Store, pg_database: str) -> None:  # noqa: F811
    # gap_wait_s leaves room for a starved poll thread on a loaded CI machine: the
    # first phase must be over (the hole filled) well before the feed gives up on it.
    feed = EventFeed(pg_store.history, _identity, poll_s=0.05, gap_wait_s=4.0).start()
    loop = asyncio.new_event_loop()
    sub, _cursor = feed.subscribe(loop)

    def received(wait_s: float) -> list[int]:
        loop.run_until_complete(asyncio.sleep(wait_s))
        out: list[int] = []
        while not sub.queue.empty():
            out += [e.id for e in sub.queue.get_nowait() or []]
        return out

    try:
        with psycopg.connect(pg_database) as slow, \
                psycopg.connect(pg_database, autocommit=True) as fast:
            late = _insert(slow, "late")          # its transaction is still open
            early = _insert(fast, "early")        # a later id, committed first
            assert early == late + 1
            assert received(0.6) == [], "must not hand out id n+1 while id n may still come"
            slow.commit()
            filled: list[int] = []
            start = time.monotonic()
            while len(filled) < 2 and time.monotonic() - start < 3.5:
                filled += received(0.1)
            assert filled == [late, early]
            lost = _insert(slow, "rolled-back")
            slow.rollback()
            after = _insert(fast, "after")
            assert after == lost + 1
            start = time.monotonic()
            got: list[int] = []
            while not got and time.monotonic() - start < 10:
                got = received(0.1)
            assert got == [after], "a hole that never fills is skipped after gap_wait_s"
            assert time.monotonic() - start >= 3.5
        assert pg_store.engine.dialect.name == "postgresql"
        with pg_store.engine.connect() as conn:
            assert conn.execute(text("select count(*) from events where subject = "
                                     "'rolled-back'")).scalar() == 0
    finally:
        feed.stop()
        loop.close()
