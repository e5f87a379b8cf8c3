"""Time for every part: the one wall clock, an injectable clock, and one back-off.

Standard library only, like the rest of `protocol/`, because the node, the hub
and the simulator all need the same answers here: milliseconds since the epoch
on the wire (PROTOCOL.md "Times"), and the capped exponential back-off with
jitter that rule 2 prescribes for re-sends. Code that times safety or retries
takes a `Clock`, so tests drive it with a fake one instead of sleeping.
"""

from __future__ import annotations

import random
import time
from typing import Protocol


def wall_ms() -> int:
    """Milliseconds since the Unix epoch, UTC, as every `ts_ms` on the wire."""
    return time.time_ns() // 1_000_000


class Clock(Protocol):
    """The two clocks a part reads: monotonic for durations, wall for `ts_ms`."""

    def monotonic(self) -> float: ...

    def wall_ms(self) -> int: ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall_ms(self) -> int:
        return wall_ms()


SYSTEM_CLOCK = SystemClock()


def backoff_s(attempt: int, first_s: float, max_s: float, jitter: float = 0.0,
              rng: random.Random | None = None, *, shorten: bool = True) -> float:
    """The wait before retry number `attempt` (1 = the first retry).

    Doubles from `first_s` and is capped at `max_s`. With `shorten` (the
    default) jitter only shortens the wait, so "first retry within first_s" and
    "never more than max_s apart" both hold while a fleet that lost its broker
    together does not retry in lock-step; otherwise it lengthens it by up to
    `jitter` (a server's retries, where the cap is not a promise).
    """
    if first_s < 0 or max_s < 0 or not 0.0 <= jitter <= 1.0:
        raise ValueError("back-off needs first_s, max_s >= 0 and 0 <= jitter <= 1")
    base = min(max_s, first_s * 2.0 ** min(max(0, attempt - 1), 62))
    r = (rng or random).random()
    return base * (1 - jitter * r) if shorten else base * (1 + jitter * r)
