"""Issue 12.3 as a fault row: a node credential trying to take a share of the replicas'
stream on the production broker (dynamic security) costs no alarm and no cancel."""

from __future__ import annotations

from pathlib import Path

from tests.faults.input_scenarios import share_hijack


def test_a_node_taking_a_share_costs_no_resend_and_no_cancel(tmp_path: Path) -> None:
    fig = share_hijack(tmp_path)
    assert fig.stored == fig.pressed and fig.lost == 0, fig
    assert fig.notes["resends_needed"] == 0, fig
    assert fig.notes["cancels_lost"] == 0, fig
    assert fig.notes["least_by_one_hub"] > 0, fig   # the replicas truly shared
