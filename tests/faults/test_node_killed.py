"""Fault 3: a node agent killed with SIGKILL while its alarms wait in the outbox."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import assert_survived
from tests.faults.node_kill import node_killed


def test_alarms_in_the_outbox_of_a_killed_agent_are_sent_after_its_restart(
        tmp_path: Path) -> None:
    fig = node_killed(tmp_path, nodes=4, presses_per_node=3)
    # Every alarm was still pending on disk when the agent died: the kill mattered.
    assert fig.notes["pending_on_disk_after_kill"] == fig.pressed == 12
    assert_survived(fig)
