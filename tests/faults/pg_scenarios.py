"""Issue 12.6: the hub heals itself on PostgreSQL. Each fault below is done to the real
PostgreSQL under a real hub process, with real nodes pressing throughout; the hub is
never restarted. Figures as in tests/faults/scenarios.py (counted in the database).

- a lock: another session holds `LOCK TABLE incidents` (ACCESS EXCLUSIVE);
- lost connections: every hub connection killed with pg_terminate_backend, repeatedly;
- the database dropped (`DROP DATABASE ... WITH (FORCE)`) and created again, empty.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from tests.faults.rig import Figures, db_alarm_ids
from tests.faults.scenarios import Rig, rig
from tests.support.hubdb import PG_ADMIN

# The hub's lock timeout in these scenarios (the setting db_lock_timeout_s).
LOCK_TIMEOUT_S = 1.0


def _admin(sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        cur = conn.execute(sql)
        return list(cur.fetchall()) if cur.description else []


@contextlib.contextmanager
def pg_database() -> Iterator[tuple[str, str]]:
    """(name, URL) of a new PostgreSQL database, dropped afterwards however it ends."""
    name = f"tiengmo_heal_{secrets.token_hex(4)}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield name, PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_rig(workdir: Any, url: str, nodes: int) -> contextlib.AbstractContextManager[Rig]:
    return rig(workdir, nodes, max(1, nodes // 5), db=url,
               db_lock_timeout_s=LOCK_TIMEOUT_S, db_statement_timeout_s=10.0)


def _watch_health(r: Rig, until: float) -> tuple[int, dict[str, Any]]:
    """/healthz until `until` (monotonic): the first degraded answer, else the last."""
    health: tuple[int, dict[str, Any]] = (0, {})
    while time.monotonic() < until:
        health = r.hub.health()
        if health[0] == 503:
            break
        time.sleep(0.2)
    return health


def _health_back(r: Rig, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while r.hub.health()[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    return r.hub.health()[0]


def pg_locked(workdir: Any, lock_s: float = 8.0, alarms: int = 40, nodes: int = 8) -> Figures:
    """`LOCK TABLE incidents` held by another session for `lock_s` during a burst."""
    fig = Figures(f"PostgreSQL incidents locked {lock_s:.0f} s", nodes)
    with pg_database() as (_, url), _pg_rig(workdir, url, nodes) as r:
        lock = psycopg.connect(url)
        try:
            lock.execute("LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE")
            t_lock = time.monotonic()
            stored_before = len(db_alarm_ids(r.db))
            r.nodes.burst(alarms, min(2.0, lock_s / 3))
            r.nodes.wait_pressed(alarms)
            health = _watch_health(r, t_lock + lock_s)
            time.sleep(max(0.0, lock_s - (time.monotonic() - t_lock)))
            r.audit.check()
            _, acked = r.nodes.outbox_ids()
            fig.notes["acked_while_locked"] = len(acked)
            fig.notes["stored_while_locked"] = len(db_alarm_ids(r.db)) - stored_before
            fig.notes["health_while_locked"] = health[0]
            fig.notes["store_error_while_locked"] = str(health[1].get("store_error"))[:160]
            # The hub's own sessions never waited on the lock much longer than its timeout.
            waits = _admin("SELECT coalesce(max(extract(epoch FROM now() - query_start)), 0) "
                           f"FROM pg_stat_activity WHERE datname = '{url.rsplit('/', 1)[1]}' "
                           "AND wait_event_type = 'Lock'")
            fig.notes["longest_lock_wait_s"] = round(float(waits[0][0]), 2)
        finally:
            lock.rollback()
            lock.close()
        t0 = time.monotonic()
        fig = r.finish(fig, t0)
        fig.notes["health_after"] = _health_back(r)
        return fig


def pg_connections_killed(workdir: Any, kills: int = 4, alarms: int = 40,
                          nodes: int = 8) -> Figures:
    """Every hub connection killed (pg_terminate_backend) `kills` times during a burst."""
    fig = Figures(f"PostgreSQL connections killed x{kills}", nodes)
    with pg_database() as (name, url), _pg_rig(workdir, url, nodes) as r:
        import threading
        burst = threading.Thread(target=r.nodes.burst, args=(alarms, 3.0), daemon=True)
        burst.start()
        killed = 0
        for _ in range(kills):
            time.sleep(0.7)
            killed += len(_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"))
        t0 = time.monotonic()
        burst.join()
        r.nodes.wait_pressed(alarms)
        fig.notes["connections_killed"] = killed
        fig = r.finish(fig, t0)
        fig.notes["health_after"] = _health_back(r)
        return fig


def pg_recreated(workdir: Any, gone_s: float = 5.0, alarms: int = 30,
                 nodes: int = 6) -> Figures:
    """The database dropped with FORCE; presses while it is gone; created again, empty."""
    fig = Figures(f"PostgreSQL database dropped {gone_s:.0f} s, created again", nodes)
    with pg_database() as (name, url), _pg_rig(workdir, url, nodes) as r:
        _admin(f'DROP DATABASE "{name}" WITH (FORCE)')
        t_drop = time.monotonic()
        r.nodes.burst(alarms, min(2.0, gone_s / 3))
        r.nodes.wait_pressed(alarms)
        health = _watch_health(r, t_drop + gone_s)
        time.sleep(max(0.0, gone_s - (time.monotonic() - t_drop)))
        r.audit.check()
        _, acked = r.nodes.outbox_ids()
        fig.notes["acked_while_gone"] = len(acked)
        fig.notes["health_while_gone"] = health[0]
        fig.notes["store_error_while_gone"] = str(health[1].get("store_error"))[:160]
        _admin(f'CREATE DATABASE "{name}"')
        t0 = time.monotonic()
        fig = r.finish(fig, t0)
        fig.notes["health_after"] = _health_back(r)
        with psycopg.connect(url) as conn:
            fig.notes["troubles"] = [tuple(x) for x in conn.execute(
                "SELECT kind, subject FROM troubles WHERE state = 'open'").fetchall()]
            fig.notes["registered_nodes"] = conn.execute(
                "SELECT count(*) FROM nodes WHERE registered").fetchone()[0]  # type: ignore[index]
        fig.notes["logged_critical"] = "CRITICAL" in r.hub.log_text()
        return fig
