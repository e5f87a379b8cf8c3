"""Reading gpiozero MockPin histories as timelines, for asserting what an output did."""

from __future__ import annotations

import time
from collections.abc import Callable

from gpiozero.pins.mock import MockPin


def timeline(pin: MockPin) -> list[tuple[float, bool]]:
    """(seconds since clear_states, level) of every change, the initial level first."""
    t = 0.0
    out: list[tuple[float, bool]] = []
    for state in pin.states:  # each timestamp is the time since the previous change
        t += state.timestamp
        out.append((t, bool(state.state)))
    return out


def high_periods(pin: MockPin) -> list[tuple[float, float]]:
    """(start, length) of every period the pin was high; an open one runs to now."""
    periods: list[tuple[float, float]] = []
    start: float | None = None
    now = sum(s.timestamp for s in pin.states) + (time.monotonic() - pin._last_change)
    for t, level in timeline(pin):
        if level and start is None:
            start = t
        elif not level and start is not None:
            periods.append((start, t - start))
            start = None
    if start is not None:
        periods.append((start, now - start))
    return periods


def groups(periods: list[tuple[float, float]], gap: float) -> list[list[tuple[float, float]]]:
    """Periods split wherever the pin was low for longer than `gap` (a gong's rolls)."""
    out: list[list[tuple[float, float]]] = []
    end = -1e9
    for start, length in periods:
        if not out or start - end > gap:
            out.append([])
        out[-1].append((start, length))
        end = start + length
    return out


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `predicate` until it holds or `timeout` passes (test-side only)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
