"""Shared fixtures: a real Mosquitto per test that needs one, and a bare MQTT wire."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto
from tests.support.wire import Wire


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh Mosquitto on a free port, anonymous, no persistence."""
    b = Mosquitto(tmp_path).start()
    yield b
    b.stop()


@pytest.fixture
def wire(broker: Mosquitto) -> Iterator[Wire]:
    """A bare MQTT client on `broker` that records everything it is subscribed to."""
    w = Wire(broker.host, broker.port)
    yield w
    w.close()
