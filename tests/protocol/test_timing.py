"""The one back-off (PROTOCOL.md rule 2) and the one wall clock."""

from __future__ import annotations

import random
import time

import pytest

from protocol.timing import SYSTEM_CLOCK, backoff_s, wall_ms


def test_the_first_retry_is_within_first_and_the_cap_is_never_passed() -> None:
    rng = random.Random(7)
    waits = [backoff_s(a, 5.0, 30.0, 0.2, rng) for a in range(1, 40)]
    assert 4.0 <= waits[0] <= 5.0
    assert max(waits) <= 30.0
    assert waits[-1] >= 24.0          # capped, only shortened by the jitter


def test_it_doubles_until_the_cap() -> None:
    assert [backoff_s(a, 1.0, 10.0) for a in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_a_server_back_off_may_lengthen_but_a_node_one_never_does() -> None:
    rng = random.Random(1)
    longer = [backoff_s(3, 1.0, 60.0, 0.2, rng, shorten=False) for _ in range(50)]
    assert all(4.0 <= w <= 4.8 for w in longer) and max(longer) > 4.0


def test_nonsense_is_refused() -> None:
    with pytest.raises(ValueError):
        backoff_s(1, -1.0, 5.0)
    with pytest.raises(ValueError):
        backoff_s(1, 1.0, 5.0, jitter=2.0)


def test_the_wall_clock_is_epoch_milliseconds() -> None:
    assert abs(wall_ms() - time.time() * 1000) < 1000
    assert abs(SYSTEM_CLOCK.wall_ms() - wall_ms()) < 1000
