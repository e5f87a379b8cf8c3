"""Issue 12.4: commits failing again and again (ENOSPC on and off) during a burst:
every `sound` names an incident stored at the end, one incident per kind and hamlet."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.commit_scenarios import commit_failures
from tests.faults.conftest import assert_survived


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tmpfs")
def test_failed_commits_leave_no_phantom_sound_and_no_second_incident(tmp_path: Path) -> None:
    fig = commit_failures(tmp_path, flaps=6, alarms=40, nodes=8)
    assert fig.sounds, fig
    assert fig.phantom_sounds == 0, fig
    assert fig.notes["logged_full"], fig   # the commits did fail
    assert_survived(fig)
