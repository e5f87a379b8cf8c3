"""Bare test clients that are always disconnected afterwards, whatever a test did with them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.paho_client import Client


@contextmanager
def closing_clients() -> Iterator[list[Client]]:
    """A list to append clients to; each is disconnected and its loop stopped on exit."""
    clients: list[Client] = []
    try:
        yield clients
    finally:
        for c in clients:
            c.c.disconnect()
            c.c.loop_stop()
