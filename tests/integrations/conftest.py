"""Fixtures of the integration tests: the e2e world (tests/e2e) and a stack on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import E2E
from tests.integrations.support import Stack
from tests.support.broker import Mosquitto


@pytest.fixture
def e2e(broker: Mosquitto, tmp_path: Path) -> Iterator[E2E]:
    world = E2E(broker, tmp_path)
    yield world
    world.close()


@pytest.fixture
def stack(e2e: E2E) -> Iterator[Stack]:
    s = Stack(e2e)
    yield s
    s.close()
