"""The e2e fixture: one Mosquitto per test (tests/conftest.py), hubs and villages on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import E2E
from tests.support.broker import Mosquitto


@pytest.fixture
def e2e(broker: Mosquitto, tmp_path: Path) -> Iterator[E2E]:
    world = E2E(broker, tmp_path)
    yield world
    world.close()
