"""One leader among hub replicas, on SQLite and on PostgreSQL: exclusive, handed over on death."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Engine

from hub.db import make_engine
from hub.leadership import (
    LEADER_LOCK_KEY,
    AdvisoryLockLeadership,
    FileLockLeadership,
    leadership_for,
)
from tests.support.hubdb import db_url, pg_database  # noqa: F401 - fixtures

RETRY_S = 0.3


def wait_for(cond: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return True
        time.sleep(0.05)
    return False


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_the_default_fits_the_database(db_url: str) -> None:  # noqa: F811
    with engine_for(db_url) as engine:
        lead = leadership_for(engine, "hub-a")
        kind = AdvisoryLockLeadership if db_url.startswith("postgres") else FileLockLeadership
        assert isinstance(lead, kind)


def test_exactly_one_leads_and_a_graceful_stop_hands_over_at_once(db_url: str) -> None:  # noqa: F811
    with engine_for(db_url) as engine:
        a = leadership_for(engine, "hub-a", retry_s=RETRY_S)
        b = leadership_for(engine, "hub-b", retry_s=RETRY_S)
        a.start()
        b.start()
        try:
            assert a.is_leader() and not b.is_leader()   # the first to start leads at once
            time.sleep(4 * RETRY_S)                      # and keeps leading: no flapping
            assert a.is_leader() and not b.is_leader()
            a.stop()
            assert not a.is_leader()
            assert wait_for(b.is_leader, 5), "the standby did not take over"
            a.start()                                    # the old leader comes back: standby
            time.sleep(3 * RETRY_S)
            assert b.is_leader() and not a.is_leader()
        finally:
            a.stop()
            b.stop()


HOLDER = """
import sys, time
from hub.db import make_engine
from hub.leadership import leadership_for
lead = leadership_for(make_engine(sys.argv[1]), "hub-doomed", retry_s=0.3)
lead.start()
print("leader" if lead.is_leader() else "standby", flush=True)
time.sleep(600)
"""


def test_a_leader_killed_with_sigkill_is_replaced_within_seconds(db_url: str) -> None:  # noqa: F811
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, db_url], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "leader"
        with engine_for(db_url) as engine:
            us = leadership_for(engine, "hub-survivor", retry_s=RETRY_S)
            us.start()
            try:
                time.sleep(3 * RETRY_S)
                assert not us.is_leader()               # the holder is alive: we wait
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                t0 = time.monotonic()
                assert wait_for(us.is_leader, 10), "nobody took over from the dead leader"
                # Well within any supervision time (the default reports a loss within 60 s).
                assert time.monotonic() - t0 < 5
            finally:
                us.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_postgresql_leader_that_loses_its_session_stops_leading(pg_database: str) -> None:  # noqa: F811
    with engine_for(pg_database) as engine:
        a = AdvisoryLockLeadership(engine, "hub-a", retry_s=RETRY_S)
        b = AdvisoryLockLeadership(engine, "hub-b", retry_s=RETRY_S)
        a.start()
        b.start()
        try:
            assert a.is_leader()
            # The server ends a's session (a network cut, a DBA, a failover): the lock
            # is gone with it, so a must notice and stop acting, and b must take over.
            with psycopg.connect(pg_database, autocommit=True) as conn:
                killed = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND objid = %s AND granted AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())",
                    (LEADER_LOCK_KEY & 0xFFFFFFFF,)).fetchall()
            assert killed == [(True,)]
            assert wait_for(lambda: b.is_leader() and not a.is_leader(), 10)
        finally:
            a.stop()
            b.stop()


def test_sqlite_lock_file_names_the_holder(tmp_path: Path) -> None:
    with engine_for(f"sqlite:///{tmp_path}/hub.db") as engine:
        lead = leadership_for(engine, "hub-a", retry_s=RETRY_S)
        lead.start()
        try:
            assert isinstance(lead, FileLockLeadership)
            assert lead.path.name == "hub.db.leader"
            assert lead.holder_note().startswith("hub-a pid ")
        finally:
            lead.stop()
