"""Fault 5: the hub's SQLite held under an EXCLUSIVE lock by another connection."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import assert_survived
from tests.faults.scenarios import database_locked


def test_a_locked_database_delays_acks_until_stored_and_loses_nothing(tmp_path: Path) -> None:
    fig = database_locked(tmp_path, lock_s=5.0, alarms=60, nodes=10)
    assert fig.notes["stored_while_locked"] == 0
    assert fig.notes["acked_while_locked"] == 0     # no ack for what is not stored
    assert_survived(fig)
