"""Logging a flood of the same complaint without drowning the lines an operator needs."""

from __future__ import annotations

import threading
import time


class RateLimitedLog:
    """Log each reject reason at most `burst` times per `period_s`, then a summary.

    A flood of garbage must not drown the lines an operator needs.
    """

    def __init__(self, burst: int = 20, period_s: float = 60.0) -> None:
        self.burst, self.period_s = burst, period_s
        self._window: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def allow(self, reason: str) -> tuple[bool, int]:
        now = time.monotonic()
        with self._lock:
            start, n = self._window.get(reason, (now, 0))
            if now - start > self.period_s:
                suppressed = max(0, n - self.burst)
                self._window[reason] = (now, 1)
                return True, suppressed
            self._window[reason] = (start, n + 1)
            return n < self.burst, 0
