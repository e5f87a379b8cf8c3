"""Fault 6: the hub's disk full (a small tmpfs filled to the last byte), then freed."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import assert_survived
from tests.faults.scenarios import disk_full


def test_a_full_disk_is_reported_nothing_is_acked_and_all_is_stored_after(
        tmp_path: Path) -> None:
    fig = disk_full(tmp_path, full_s=5.0, alarms=40, nodes=8)
    assert fig.notes["stored_while_full"] == 0
    assert fig.notes["acked_while_full"] == 0
    # Reported: /healthz 503 "degraded" with the reason, and the log says so.
    assert fig.notes["health_while_full"] == 503
    assert fig.notes["health_status_while_full"] == "degraded"
    assert "full" in fig.notes["store_error_while_full"]
    assert fig.notes["logged_full"]
    assert fig.notes["health_after"] == 200
    assert_survived(fig)
