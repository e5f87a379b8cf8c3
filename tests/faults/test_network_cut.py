"""Fault 4: nodes cut off the network ("10 minutes", shortened), pressed during the cut."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import assert_survived
from tests.faults.scenarios import network_cut


def test_presses_during_a_network_cut_strike_the_gong_and_are_stored_after(
        tmp_path: Path) -> None:
    fig = network_cut(tmp_path, cut_s=6.0, nodes=4, presses_per_node=3)
    assert fig.notes["stored_during_cut"] == 0      # the cut was real
    assert_survived(fig)                            # every gong struck locally, all stored
