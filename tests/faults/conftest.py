"""Fault scenarios: each test runs one at a small size (bench/faults.py runs them full size)."""

from __future__ import annotations

from tests.faults.rig import Figures


def assert_survived(fig: Figures) -> None:
    """The promise of PROTOCOL.md rules 1-3, in figures."""
    assert fig.pressed > 0, fig
    assert fig.lost == 0, f"{fig.lost} alarms lost: {fig}"
    assert fig.stored == fig.pressed, fig
    assert fig.duplicate_incidents == 0, fig
    assert fig.acked_not_stored == 0, f"acked before stored: {fig}"
    assert fig.local_gongs == fig.pressed, f"a press without its local gong: {fig}"
    assert fig.hub_crashes == 0, fig
    assert not fig.phantom_sounds, f"a sound for an incident never stored: {fig}"
    assert fig.restarts_needed == 0, f"did not recover without a restart: {fig}"
