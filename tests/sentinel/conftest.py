"""Fixtures of the sentinel's end-to-end tests: a simulated modem, and the sentinels a
test started (stopped after it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integrations.fake_modem import FakeModem
from tests.sentinel.test_sentinel_e2e import SentinelProcess


@pytest.fixture
def modem() -> Iterator[FakeModem]:
    m = FakeModem()
    yield m
    m.close()


@pytest.fixture
def start_sentinel() -> Iterator[list[SentinelProcess]]:
    started: list[SentinelProcess] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            s.stop()
