"""A `protocol.timing.Clock` that moves only when a test moves it."""

from __future__ import annotations

import threading


class FakeClock:
    """Monotonic seconds and wall milliseconds that advance together, on `advance` only.

    Kept in whole nanoseconds, so that ten advances of 0.01 s land exactly where one of
    0.1 s does (floats would drift, and a deadline would be missed by 1e-13 s). Safe to
    read from the threads of the code under test. Code that waits on a real timer
    for a deadline on this clock must be woken after `advance` (SafeOutput.settle,
    Player.settle).
    """

    def __init__(self, start_s: float = 1000.0, wall_ms: int = 1_750_000_000_000) -> None:
        self._lock = threading.Lock()
        self._ns = round(start_s * 1e9)
        self._wall_ms = wall_ms

    def monotonic(self) -> float:
        with self._lock:
            return self._ns / 1e9

    def wall_ms(self) -> int:
        with self._lock:
            return self._wall_ms

    def __call__(self) -> float:
        """The monotonic reading, for code that takes a plain `() -> float` clock."""
        return self.monotonic()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock never goes back")
        with self._lock:
            self._ns += round(seconds * 1e9)
            self._wall_ms += round(seconds * 1000)
