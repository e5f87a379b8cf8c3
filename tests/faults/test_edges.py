"""Issue 12.8 as fault rows: huge unauthenticated bodies to the hub, and 1,100 silent
sockets on the broker, while real nodes press."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import assert_survived
from tests.faults.edge_scenarios import big_body, idle_sockets


def test_300_mb_bodies_get_413_and_alarms_still_sound(tmp_path: Path) -> None:
    fig = big_body(tmp_path, alarms=20, nodes=4)
    assert set(fig.notes["statuses"].values()) == {413}, fig
    # Never buffered: the hub's memory stays where it was (it was 587-930 MiB before).
    assert fig.notes["hub_rss_peak_mib"] - fig.notes["hub_rss_before_mib"] < 64, fig
    assert fig.sounds, fig
    assert_survived(fig)


def test_1100_idle_sockets_leave_room_for_the_nodes(tmp_path: Path) -> None:
    fig = idle_sockets(tmp_path, sockets=1100, nodes=4, late_nodes=2)
    assert fig.notes["idle_held"] == 1100, fig
    assert fig.notes["late_nodes_connected"] == "2/2", fig
    assert_survived(fig)
