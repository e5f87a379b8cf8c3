"""Node supervision (PROTOCOL.md rule 7): online / offline / missing, and troubles.

Pure logic with an injectable clock: the ingest path feeds births, deaths and
heartbeats in; `tick(now_ms)` says what changed. A tick thread in the runtime
drives it (only on the replica that leads, see runtime.Leadership), so tests
run the real rules on short timers or on a fake clock without sleeping.

Rules:
- offline from the node's death (its Will or a graceful stop); a death whose
  boot_id is below the latest birth's is stale and ignored;
- missing when no heartbeat (or birth) for `missing_after_heartbeats`
  intervals; the loss is taken to start when the first heartbeat was due;
- a loss is reported (a trouble) only once it has lasted `loss_debounce_s`,
  so a short reconnect is never reported; with the defaults a dead link is
  reported ~43 s (Will) or 30 s (missing) after it happened, under 60 s;
- when at least `area_min_nodes` and `area_fraction` of an area's enabled
  nodes are lost, ONE area trouble is raised (power cut, jamming) and the
  node troubles of that area are folded into it;
- troubles clear when the nodes come back;
- the hub's own isolation is not the nodes' fault: while the hub's broker link
  is down, or before it was ever up, nothing is judged (no status changes, no
  troubles), and on each (re)connect every node not already reported lost
  gets a fresh grace from that moment, as if it had just been heard (a death
  too: its retained state re-arrives on the new subscription). A node lost
  and reported before the link dropped stays reported until it is heard.
  The runtime feeds the link's state in with `link_state()`; a Supervisor built
  on its own (tests) starts linked.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sized
from dataclasses import dataclass, field
from enum import StrEnum


class NodeStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class SupervisionTimers:
    heartbeat_s: float = 10.0
    missing_after_heartbeats: int = 3
    loss_debounce_s: float = 20.0
    report_within_s: float = 60.0
    area_min_nodes: int = 3
    area_fraction: float = 0.5

    @property
    def tick_s(self) -> float:
        """How often to tick so a loss is reported well within report_within_s."""
        return max(0.05, min(1.0, self.report_within_s / 20, self.loss_debounce_s / 4))


@dataclass(frozen=True, slots=True)
class StatusChanged:
    node_id: str
    status: NodeStatus
    since_ms: int


@dataclass(frozen=True, slots=True)
class TroubleRaised:
    """A node (node_id set) or a whole area (nodes lists who) has been lost."""

    key: str
    area: str
    node_id: str | None
    nodes: tuple[str, ...]
    since_ms: int
    status: NodeStatus | None = None


@dataclass(frozen=True, slots=True)
class TroubleCleared:
    key: str
    area: str
    node_id: str | None
    folded: bool = False  # a node trouble replaced by its area's trouble


Event = StatusChanged | TroubleRaised | TroubleCleared


def node_key(node_id: str) -> str:
    return f"node_lost:{node_id}"


def area_key(area: str) -> str:
    return f"area_lost:{area}"


@dataclass
class _Node:
    node_id: str
    area: str
    enabled: bool = True
    boot_id: int = -1
    last_seen_ms: int = 0
    death_ms: int | None = None
    status: NodeStatus | None = None
    reported: bool = False  # a node trouble is open for it


@dataclass
class Supervisor:
    timers: SupervisionTimers
    started_ms: int
    _nodes: dict[str, _Node] = field(default_factory=dict)
    _areas_open: set[str] = field(default_factory=set)
    # The nodes by id, kept by set_nodes: tick() walks them every second and
    # re-sorting thousands each time was most of its cost.
    _order: list[_Node] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Whether the hub's own broker link is up (see the module's last rule).
    linked: bool = True
    _connection: int = 0

    # ---- the registry and recovered state -----------------------------

    def set_nodes(self, nodes: list[tuple[str, str, bool]]) -> None:
        """(node_id, area, enabled) for every registered node; keeps what is known."""
        with self._lock:
            seen = set()
            for node_id, area, enabled in nodes:
                seen.add(node_id)
                n = self._nodes.get(node_id)
                if n is None:
                    # Never heard from: give it the same grace as a node that
                    # has just sent a heartbeat, counted from the hub's start.
                    self._nodes[node_id] = _Node(node_id, area, enabled,
                                                 last_seen_ms=self.started_ms)
                else:
                    n.area, n.enabled = area, enabled
            for gone in set(self._nodes) - seen:
                del self._nodes[gone]
            self._order = sorted(self._nodes.values(), key=lambda x: x.node_id)

    def restore(self, node_id: str, *, online: bool | None, boot_id: int | None,
                last_seen_ms: int | None, offline_since_ms: int | None = None,
                trouble_open: bool = False) -> None:
        """Carry on from the database after a restart (or on a new leader)."""
        with self._lock:
            n = self._nodes.get(node_id)
            if n is None:
                return
            if boot_id is not None:
                n.boot_id = boot_id
            if last_seen_ms is not None:
                n.last_seen_ms = max(n.last_seen_ms, last_seen_ms)
            if online is False:
                n.death_ms = offline_since_ms or last_seen_ms or self.started_ms
            n.reported = trouble_open

    def restore_area_trouble(self, area: str) -> None:
        with self._lock:
            self._areas_open.add(area)

    # ---- what ingest feeds in -------------------------------------------

    def birth(self, node_id: str, boot_id: int, now_ms: int) -> None:
        with self._lock:
            n = self._nodes.get(node_id)
            if n is not None:
                n.boot_id = max(n.boot_id, boot_id)
                n.last_seen_ms = max(n.last_seen_ms, now_ms)
                n.death_ms = None

    def death(self, node_id: str, boot_id: int, now_ms: int) -> bool:
        """Record a death; False when it is stale (an older boot's Will)."""
        with self._lock:
            n = self._nodes.get(node_id)
            if n is None:
                return True
            if boot_id < n.boot_id:
                return False
            n.boot_id = boot_id
            if n.death_ms is None:
                n.death_ms = now_ms
            return True

    def heartbeat(self, node_id: str, boot_id: int, now_ms: int) -> None:
        n = self._nodes.get(node_id)
        if n is None:
            return
        if n.death_ms is None and boot_id <= n.boot_id:
            # The usual heartbeat: only last seen moves, so no lock (it comes on the
            # link's thread, which must not wait ~6 ms for a tick over 5,000 nodes).
            # A tick reads the time before or after; one int attribute is atomic.
            if now_ms > n.last_seen_ms:
                n.last_seen_ms = now_ms
            return
        with self._lock:
            n = self._nodes.get(node_id)
            if n is None:
                return
            n.last_seen_ms = max(n.last_seen_ms, now_ms)
            if boot_id > n.boot_id or (n.death_ms is not None and boot_id >= n.boot_id
                                       and now_ms >= n.death_ms):
                # A heartbeat after a death means the node is back (its birth
                # may have been lost or not re-sent): trust the live evidence.
                # One received BEFORE the death is not such evidence, whenever it
                # is handled (heartbeats and deaths travel by different threads).
                n.boot_id = boot_id
                n.death_ms = None

    def link_state(self, up: bool, now_ms: int, connection: int = 0) -> None:
        """The hub's own broker link is `up` (or not) at `now_ms`, on its `connection`-th
        connect; called every tick. A new `connection` number while up is a reconnect
        even if the drop in between was never seen (it was shorter than a tick, or the
        tick itself was held up meanwhile)."""
        with self._lock:
            if not up:
                self.linked = False
                return
            if self.linked and connection == self._connection:
                return
            self.linked, self._connection = True, connection
            for n in self._nodes.values():
                if n.reported:
                    continue   # lost before the link dropped: stays so until heard
                # Silence while the hub itself was cut off says nothing about the node.
                n.last_seen_ms = max(n.last_seen_ms, now_ms)
                if n.death_ms is not None:
                    n.death_ms = max(n.death_ms, now_ms)

    # ---- evaluation -------------------------------------------------------

    def _derive(self, n: _Node, now_ms: int) -> tuple[NodeStatus, int | None]:
        """(status, loss start) of one node at `now_ms`."""
        t = self.timers
        if n.death_ms is not None:
            return NodeStatus.OFFLINE, n.death_ms
        missing_ms = n.last_seen_ms + math.ceil(t.missing_after_heartbeats * t.heartbeat_s * 1000)
        if now_ms >= missing_ms:
            return NodeStatus.MISSING, n.last_seen_ms + int(t.heartbeat_s * 1000)
        return NodeStatus.ONLINE, None

    def status(self, node_id: str, now_ms: int) -> NodeStatus | None:
        with self._lock:
            n = self._nodes.get(node_id)
            return None if n is None else self._derive(n, now_ms)[0]

    def tick(self, now_ms: int) -> list[Event]:
        """Everything that changed since the last tick, in a stable order."""
        debounce_ms = int(self.timers.loss_debounce_s * 1000)
        events: list[Event] = []
        with self._lock:
            if not self.linked:
                return events   # the hub is cut off: nodes are not judged meanwhile
            by_area: dict[str, list[tuple[_Node, NodeStatus, int | None]]] = {}
            for n in self._order:
                if not n.enabled:
                    continue
                status, since = self._derive(n, now_ms)
                if status is not n.status:
                    events.append(StatusChanged(n.node_id, status, since or now_ms))
                    n.status = status
                by_area.setdefault(n.area, []).append((n, status, since))
            for area, members in sorted(by_area.items()):
                events += self._area_events(area, members, now_ms, debounce_ms)
        return events

    def _area_events(self, area: str, members: list[tuple[_Node, NodeStatus, int | None]],
                     now_ms: int, debounce_ms: int) -> list[Event]:
        t = self.timers
        lost = [(n, s, since) for n, s, since in members if since is not None]
        due = [(n, s, since) for n, s, since in lost if now_ms - since >= debounce_ms]
        events: list[Event] = []
        # Back: clear what was reported for nodes that are no longer lost.
        for n, _s, since in members:
            if since is None and n.reported:
                n.reported = False
                events.append(TroubleCleared(node_key(n.node_id), area, n.node_id))
        def enough(group: Sized) -> bool:
            return len(group) >= t.area_min_nodes and len(group) >= t.area_fraction * len(
                members)

        area_lost = enough(lost)
        if area in self._areas_open:
            if area_lost:
                return events
            self._areas_open.discard(area)
            events.append(TroubleCleared(area_key(area), area, None))
            # Whoever is still lost is reported on its own from here on.
        elif enough(due):
            # Raised once enough of the area has been lost past the debounce: a fresh
            # loss of most of it beside one old one is not yet a power cut.
            self._areas_open.add(area)
            names = tuple(n.node_id for n, _, _ in lost)
            events.append(TroubleRaised(area_key(area), area, None, names,
                                        min(s for _, _, s in lost if s is not None)))
            for n, _, _ in lost:
                if n.reported:
                    n.reported = False
                    events.append(TroubleCleared(node_key(n.node_id), area, n.node_id,
                                                 folded=True))
            return events
        # Most of the area is lost but not yet long enough (a power cut's Wills arrive
        # over a keepalive or two): a node already due waits for its neighbours, up to
        # midway between the debounce and the report deadline, so a real power cut is ONE
        # area trouble while a node lost beside a passing blip is still reported in time.
        hold_ms = (debounce_ms + int(t.report_within_s * 1000)) // 2
        for n, s, since in due:
            if area_lost and since is not None and now_ms - since < hold_ms:
                continue
            if not n.reported and since is not None:
                n.reported = True
                events.append(TroubleRaised(node_key(n.node_id), area, n.node_id,
                                            (n.node_id,), since, s))
        return events
