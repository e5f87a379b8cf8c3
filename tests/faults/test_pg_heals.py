"""Issue 12.6 on PostgreSQL: a lock, lost connections, the database dropped and created
again; the hub (never restarted) stores every alarm the nodes re-sent (pg_scenarios.py)."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import assert_survived
from tests.faults.pg_scenarios import (
    LOCK_TIMEOUT_S,
    pg_connections_killed,
    pg_locked,
    pg_recreated,
)


def _report(fig: object) -> None:
    print(f"\n{fig}")


def test_a_lock_is_waited_on_no_longer_than_the_timeout_reported_and_healed(
        tmp_path: Path) -> None:
    fig = pg_locked(tmp_path)
    _report(fig)
    assert fig.notes["stored_while_locked"] == 0
    assert fig.notes["acked_while_locked"] == 0
    assert fig.notes["health_while_locked"] == 503
    assert "lock" in fig.notes["store_error_while_locked"].lower()
    assert fig.notes["longest_lock_wait_s"] <= LOCK_TIMEOUT_S + 1.0
    assert fig.notes["health_after"] == 200
    assert fig.recover_s < 10, fig
    assert_survived(fig)


def test_killed_connections_are_replaced_and_nothing_is_lost(tmp_path: Path) -> None:
    fig = pg_connections_killed(tmp_path)
    _report(fig)
    assert fig.notes["connections_killed"] > 0
    assert fig.notes["health_after"] == 200
    assert_survived(fig)


def test_a_dropped_and_recreated_database_is_migrated_again_and_says_so(
        tmp_path: Path) -> None:
    fig = pg_recreated(tmp_path)
    _report(fig)
    assert fig.notes["acked_while_gone"] == 0
    assert fig.notes["health_while_gone"] == 503
    # Only that: no alarm was stored between the migration and the registry's return
    # (it would be from an "unknown node", and not sound).
    assert fig.notes["troubles"] == [("database_recreated", "database")]
    assert fig.notes["registered_nodes"] == fig.nodes      # the registry is back
    assert fig.notes["logged_critical"]
    assert fig.notes["health_after"] == 200
    assert fig.recover_s < 15, fig
    assert_survived(fig)
