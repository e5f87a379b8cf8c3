"""Fault 1: the hub killed with SIGKILL in the middle of a burst, then started again."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import assert_survived
from tests.faults.scenarios import hub_killed


def test_a_hub_killed_mid_burst_loses_no_alarm_and_opens_no_second_incident(
        tmp_path: Path) -> None:
    fig = hub_killed(tmp_path, alarms=300, nodes=50)
    assert_survived(fig)
    # The kill really fell inside the burst: some stored before it, the rest after.
    assert 0 < fig.notes["stored_at_kill"] < fig.pressed
