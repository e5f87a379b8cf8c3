"""Fault 2: Mosquitto restarted mid-burst, with persistence (production) and without."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import assert_survived
from tests.faults.scenarios import broker_restarted


@pytest.mark.parametrize("persistence", [True, False], ids=["persistence", "no-persistence"])
def test_a_broker_restart_mid_burst_loses_no_alarm(tmp_path: Path, persistence: bool) -> None:
    fig = broker_restarted(tmp_path, alarms=200, nodes=40, persistence=persistence)
    assert_survived(fig)
    assert 0 < fig.notes["stored_at_stop"] < fig.pressed
