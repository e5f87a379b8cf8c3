"""What the agent needs of its connection to the broker: the transport interface.

The agent talks to the hub only through a `Transport` (node/link.py is paho's, the one a Pi
runs; the simulator's, firmware_sim/simlink.py, adds a network cut, a crash and a shared
network loop). It builds one with a `TransportFactory` when it starts, because the Last Will
names the boot_id the outbox hands out then.

What every transport guarantees (PROTOCOL.md, Transport and State):
- the Last Will (`will`) is set before any connect, and `birth()` is published on every
  successful connect, after the subscriptions are renewed and before anything else;
- reconnects back off exponentially, never waiting more than `reconnect_max_s`;
- a refused CONNACK is not a connection (nothing is published, `Refused` is reported);
- `on_event` is called on the transport's own thread and must only enqueue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .config import MqttConfig


@dataclass(frozen=True, slots=True)
class Connected:
    """The broker accepted us; birth is out and subscriptions renewed."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The broker answered CONNACK with a failure (bad credentials, not authorised...)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    payload: bytes
    retain: bool


LinkEvent = Connected | Disconnected | Refused | Incoming
Outgoing = tuple[str, bytes, int, bool]   # topic, payload, qos, retain


class Delivery(Protocol):
    """A publish in flight."""

    def wait(self, timeout: float) -> bool:
        """Block until the broker has it (QoS 1) or `timeout` passes; True if it has."""
        ...


class Transport(Protocol):
    """One node's connection to the broker, as the agent uses it."""

    @property
    def connected(self) -> bool:
        """Up: the broker accepted us and confirmed the subscriptions."""
        ...

    def wait_connected(self, timeout: float) -> bool: ...

    def start(self) -> None:
        """Connect in the background; keep retrying until the broker is reachable."""

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> Delivery:
        """Queue a publish (any thread). QoS 1 while offline is kept and sent on reconnect."""
        ...

    def stop(self, death: Outgoing | None, timeout: float) -> bool:
        """Graceful stop: publish `death`, wait for it, disconnect.

        True when the death reached the broker (or none was asked for).
        """
        ...


class TransportFactory(Protocol):
    """Builds the agent's transport (node.link.Link on a Pi)."""

    def __call__(self, cfg: MqttConfig, client_id: str, *, will: Outgoing,
                 birth: Callable[[], Outgoing], subscriptions: list[tuple[str, int]],
                 on_event: Callable[[LinkEvent], None]) -> Transport: ...
