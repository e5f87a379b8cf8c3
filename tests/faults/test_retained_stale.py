"""Issue 12.2: a retained 30-day-old alarm waiting on the broker sounds nothing when a
hub starts on a fresh database; the nodes' real alarms afterwards sound and are stored."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import assert_survived
from tests.faults.input_scenarios import retained_stale


def test_a_retained_stale_alarm_sounds_nothing_on_a_fresh_hub(tmp_path: Path) -> None:
    fig = retained_stale(tmp_path, age_days=30, nodes=4)
    assert fig.notes["sounds_for_the_stale_alarm"] == 0, fig
    assert fig.notes["stale_stored"] is False, fig
    assert fig.incidents == 2, fig          # the real presses: theft and fire, one hamlet
    assert fig.sounds and fig.sounds >= 2, fig
    assert_survived(fig)
