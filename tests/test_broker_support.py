"""The tests' Mosquitto (tests/support/broker.py) under xdist: a free port taken by
someone else before Mosquitto binds it is not mistaken for a running broker."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import broker as broker_mod
from tests.support.broker import Mosquitto


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on (it answers connects, as a broker would)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_chosen_port_taken_meanwhile_moves_to_another(
        tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    real = broker_mod.free_port
    offers = iter([taken_port])
    monkeypatch.setattr(broker_mod, "free_port", lambda: next(offers, None) or real())
    b = Mosquitto(tmp_path).start()
    try:
        assert b.port != taken_port
        assert b.proc is not None and b.proc.poll() is None
        b.restart()                     # a restart keeps the port its clients know
        assert b.port != taken_port and b.proc is not None and b.proc.poll() is None
    finally:
        b.stop()


def test_a_fixed_port_already_taken_is_an_error_not_a_broker(tmp_path: Path,
                                                               taken_port: int) -> None:
    b = Mosquitto(tmp_path, port=taken_port)
    try:
        with pytest.raises(RuntimeError, match="Address already in use"):
            b.start()
    finally:
        b.stop()            # had it been taken for started, no Mosquitto is left behind
