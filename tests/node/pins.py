"""Reading gpiozero MockPin histories as timelines, for asserting what an output did."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from gpiozero.pins.mock import MockPin

from tests.support.fake_clock import FakeClock


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


class Trace:
    """A pin's level read at the moments a test puts a fake clock to (fake-clock seconds).

    `step(dt)` advances the clock, lets `settle` bring the code under test up to it, and
    records the pin; `hold(s)` does that every `resolution` seconds. Periods measured from a
    trace are exact to one `resolution`. `rises()` counts the pin's real rising edges, so a
    blip between two readings cannot hide.
    """

    def __init__(self, clock: FakeClock, pin: MockPin, settle: Callable[[], object],
                 resolution: float = 0.01) -> None:
        self.clock = clock
        self.pin = pin
        self.settle = settle
        self.resolution = resolution
        self.t0 = clock.monotonic()
        pin.clear_states()
        self.readings: list[tuple[float, bool]] = []
        self.read()

    def read(self) -> bool:
        assert self.settle() is not False, "the code under test did not settle"
        level = bool(self.pin.state)
        self.readings.append((self.clock.monotonic() - self.t0, level))
        return level

    def after(self, request: Callable[[], object]) -> bool:
        """Make a request (`out.on`, `player.silence`...) and read the pin it leads to.

        Reading at once pins the request to this clock reading: otherwise the worker
        might act on it only after the test has moved the clock on.
        """
        request()
        return self.read()

    def step(self, seconds: float) -> bool:
        self.clock.advance(seconds)
        return self.read()

    def hold(self, seconds: float) -> bool:
        steps = round(seconds / self.resolution)
        for _ in range(steps):
            self.step(self.resolution)
        return bool(self.pin.state)

    def high_periods(self) -> list[tuple[float, float]]:
        """(start, length) of every run of high readings; an open one runs to the last."""
        periods: list[tuple[float, float]] = []
        start: float | None = None
        for t, level in self.readings:
            if level and start is None:
                start = t
            elif not level and start is not None:
                periods.append((start, t - start))
                start = None
        if start is not None:
            periods.append((start, self.readings[-1][0] - start))
        return periods

    def rises(self) -> int:
        levels = [bool(s.state) for s in self.pin.states]
        return sum(1 for a, b in itertools.pairwise(levels) if b and not a)
