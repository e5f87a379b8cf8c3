"""Operator actions (and the hub's own sounding), each stored, audited and published.

The API and the runtime call these; they never publish MQTT themselves. A
`Publisher` (the runtime's MQTT link) is passed in, so this module knows no
MQTT and tests can hand in a recorder. Every action writes who did what and
when to the audit log. Commands are stored before they are published, so a
node's `result` always finds its command.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import protocol
from protocol import Ack, Command

from .errors import InvalidAction, NotFound
from .policy import Policy, Sound
from .settings import HubSettings
from .store import IncidentInfo, NodeInfo, Outcome, Store


class Publisher(Protocol):
    """Where commands and acks go out (the runtime's MQTT link)."""

    def publish_area_cmd(self, area: str, cmd: Command) -> None: ...

    def publish_node_cmd(self, node_id: str, cmd: Command) -> None: ...

    def publish_ack(self, node_id: str, ack: Ack) -> None: ...


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Services:
    """Operator actions on one store, publishing through one publisher."""

    def __init__(self, store: Store, publisher: Publisher, settings: HubSettings, *,
                 clock: Callable[[], int] = wall_ms) -> None:
        self.store = store
        self.publisher = publisher
        self.settings = settings
        self.policy: Policy = settings.policy
        self.clock = clock

    # --- sounding ------------------------------------------------------------------------------

    def sound_incident(self, incident_id: str, *, area: str | None = None,
                       actor: str = "hub") -> Command:
        """Sound an incident per policy (or in `area`): store, audit, publish one `sound`."""
        raise NotImplementedError

    def escalate_due(self, now_ms: int | None = None) -> list[Command]:
        """Widen every unacknowledged incident due for escalation by one area level; safe
        with several replicas (the store's compare-and-set picks one)."""
        raise NotImplementedError

    # --- incidents -----------------------------------------------------------------------------

    def acknowledge(self, incident_id: str, actor: str) -> IncidentInfo:
        """An operator took the incident: `acknowledged` acks to every node whose alarm is in
        it. Idempotent. Raises NotFound, InvalidAction (resolved/cancelled)."""
        raise NotImplementedError

    def resolve(self, incident_id: str, actor: str, outcome: Outcome | str,
                note: str | None = None) -> IncidentInfo:
        """Close the incident with what it was: `resolved` acks, and a silence for its sound."""
        raise NotImplementedError

    def silence(self, actor: str, *, incident_id: str | None = None,
                area: str | None = None) -> Command:
        """Silence one incident's sound (where it sounded), or every sound in `area`."""
        raise NotImplementedError

    def all_clear(self, area: str, actor: str, duration_s: int | None = None) -> list[Command]:
        """Silence every sound in `area`, then play the all-clear signal there."""
        raise NotImplementedError

    def broadcast(self, area: str, actor: str, signal: str, duration_s: int | None = None,
                  message: str | None = None) -> Command:
        """An operator's warning (priority 3) with `signal` = a kind or a pattern name."""
        raise NotImplementedError

    def start_drill(self, area: str, actor: str,
                    duration_s: int | None = None) -> tuple[IncidentInfo, Command]:
        """A drill in `area`: a drill incident (never counted) and a `sound` with drill=true."""
        raise NotImplementedError

    def stop_drill(self, incident_id: str, actor: str) -> Command:
        """Silence a drill and close its incident (outcome `test`)."""
        raise NotImplementedError

    # --- nodes ---------------------------------------------------------------------------------

    def test_node(self, node_id: str, actor: str, duration_s: int | None = None) -> Command:
        raise NotImplementedError

    def ping_node(self, node_id: str, actor: str) -> Command:
        raise NotImplementedError

    def register_node(self, node_id: str, area: str, actor: str, *, name: str | None = None,
                      households: int | None = None, lat: float | None = None,
                      lon: float | None = None, enabled: bool = True) -> NodeInfo:
        raise NotImplementedError

    def enable_node(self, node_id: str, actor: str) -> NodeInfo:
        raise NotImplementedError

    def disable_node(self, node_id: str, actor: str) -> NodeInfo:
        raise NotImplementedError

    def move_node(self, node_id: str, area: str, actor: str) -> NodeInfo:
        raise NotImplementedError


__all__ = ["InvalidAction", "NotFound", "Publisher", "Services", "Sound", "protocol"]
