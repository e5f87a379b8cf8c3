"""Power supervision: nodes on battery, low batteries, and a power cut as ONE area event.

Pure logic with an injectable clock, like supervision.py: `heartbeat()` is called
on the broker link's thread for every heartbeat and only sets two attributes
(no lock, no allocation beyond the call), `tick(now_ms)` on the leader's tick thread
says which troubles to open and clear.

Rules:
- a node whose heartbeat says `power: battery` is on battery from that heartbeat
  until one says `mains`; a heartbeat without `power` (no power-good input)
  changes nothing;
- when at least `cut_min_nodes` and `cut_fraction` of an area's enabled nodes are on
  battery, that area has a `power_cut`: ONE trouble listing its nodes ("mains power
  lost in Vi Hương commune, 9 nodes on battery"), and their `on_battery` troubles
  are folded into it. Of nested areas the smallest one that holds every node
  on battery of the larger is named (a cut of all of Nà Sang's nodes names Nà Sang,
  not the commune above it; a cut across the commune names the commune);
- a cut stays open while at least `cut_min_nodes` of its area are on battery (so the
  last nodes to report mains again do not each become a trouble), then clears;
- a node on battery outside any cut waits `cut_window_s` for its neighbours before
  its own `on_battery` trouble (from its first battery heartbeat, or from the end of
  the cut it was part of): a cut's nodes report over a heartbeat interval and must
  read as one event, not as a run of single nodes first;
- `low_battery` per node below `low_battery_pct`, cleared at `low_battery_pct` +
  `low_battery_margin_pct` (hysteresis: a reading wavering at the threshold does not
  open and clear all night). It is not folded into a cut: it says which gong goes
  dark first;
- after a restart (or on a new leader) the open troubles are restored and taken as
  still true until the nodes' heartbeats say otherwise.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("tiengmo.hub.power")

ON_BATTERY = "on_battery"
LOW_BATTERY = "low_battery"
POWER_CUT = "power_cut"


@dataclass(frozen=True, slots=True)
class PowerTimers:
    low_battery_pct: float = 20.0
    low_battery_margin_pct: float = 5.0
    cut_min_nodes: int = 3
    cut_fraction: float = 0.5
    cut_window_s: float = 30.0


@dataclass(frozen=True, slots=True)
class PowerTrouble:
    """Open (or update the detail of) a trouble; `folded`/`cleared` say the opposite."""

    kind: str
    subject: str           # a node id, or an area path for a power cut
    detail: dict[str, object]
    open: bool = True
    folded: bool = False   # an on_battery trouble cleared because a power cut covers it


@dataclass
class _Node:
    node_id: str
    area: str
    enabled: bool = True
    battery_since_ms: int | None = None   # on battery since (None: mains or not known)
    pct: float | None = None
    released_ms: int = 0                  # the end of the last cut it was part of
    on_reported: bool = False
    low_reported: bool = False


def _ancestors(area: str) -> list[str]:
    parts = area.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _covers(area: str, node_area: str) -> bool:
    return node_area == area or node_area.startswith(area + "/")


@dataclass
class PowerWatch:
    timers: PowerTimers
    _nodes: dict[str, _Node] = field(default_factory=dict)
    _cuts: dict[str, tuple[str, ...]] = field(default_factory=dict)   # area -> its nodes
    # Enabled nodes in each area and below, counted when the roster is set (every 10 s),
    # not at every tick.
    _totals: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- the registry and recovered state -----------------------------

    def set_nodes(self, nodes: list[tuple[str, str, bool]]) -> None:
        """(node_id, area, enabled) for every registered node; keeps what is known."""
        with self._lock:
            fresh: dict[str, _Node] = {}
            for node_id, area, enabled in nodes:
                n = self._nodes.get(node_id) or _Node(node_id, area)
                n.area, n.enabled = area, enabled
                fresh[node_id] = n
            totals: dict[str, int] = {}
            for n in fresh.values():
                if n.enabled:
                    for a in _ancestors(n.area):
                        totals[a] = totals.get(a, 0) + 1
            self._totals = totals
            self._nodes = fresh   # one assignment: the link's thread sees old or new

    def restore(self, kind: str, subject: str, detail: dict[str, object],
                opened_ms: int) -> None:
        """An open trouble from the database: true until heartbeats say otherwise."""
        with self._lock:
            since = detail.get("since_ms")
            since_ms = since if isinstance(since, int) else opened_ms
            if kind == POWER_CUT:
                members = detail.get("nodes")
                names = tuple(sorted(str(x) for x in members)) if isinstance(members, list) else ()
                self._cuts[subject] = names
                for node_id in names:
                    if (n := self._nodes.get(node_id)) is not None and \
                            n.battery_since_ms is None:
                        n.battery_since_ms = since_ms
                return
            n = self._nodes.get(subject)
            if n is None:
                return
            if kind == ON_BATTERY:
                n.on_reported = True
                if n.battery_since_ms is None:
                    n.battery_since_ms = since_ms
            elif kind == LOW_BATTERY:
                n.low_reported = True

    # ---- what ingest feeds in (the link's thread) ------------------------

    def heartbeat(self, node_id: str, power: str | None, battery_pct: float | None,
                  now_ms: int) -> None:
        n = self._nodes.get(node_id)
        if n is None:
            return
        if power == "battery":
            if n.battery_since_ms is None:
                n.battery_since_ms = now_ms
        elif power == "mains":
            n.battery_since_ms = None
        if battery_pct is not None:
            n.pct = battery_pct

    # ---- evaluation (the leader's tick) ------------------------------------

    def tick(self, now_ms: int) -> list[PowerTrouble]:
        with self._lock:
            # Only nodes with something to judge: a village on mains costs a scan.
            low = self.timers.low_battery_pct
            busy = [n for n in self._nodes.values() if n.enabled and (
                n.battery_since_ms is not None or n.on_reported or n.low_reported
                or (n.pct is not None and n.pct < low))]
            out = self._cut_events(busy, now_ms) if busy or self._cuts else []
            covered = {node_id for members in self._cuts.values() for node_id in members}
            for n in sorted(busy, key=lambda x: x.node_id):
                out += self._node_events(n, n.node_id in covered, now_ms)
            for n in self._nodes.values():
                if not n.enabled and (n.on_reported or n.low_reported):
                    # Disabled by an operator: nothing of it is a trouble any more.
                    out += self._clear_node(n)
            return out

    def _cut_events(self, nodes: list[_Node], now_ms: int) -> list[PowerTrouble]:
        t = self.timers
        total = self._totals
        onb: dict[str, list[_Node]] = {}
        for n in nodes:
            if n.battery_since_ms is not None:
                for a in _ancestors(n.area):
                    onb.setdefault(a, []).append(n)
        qualifying = {a for a, members in onb.items()
                      if len(members) >= t.cut_min_nodes
                      and len(members) >= t.cut_fraction * total.get(a, len(members))}

        # An area is not named when a larger qualifying one holds more of the nodes on
        # battery, or a smaller qualifying one holds all of them (it names the place
        # better). Walking each qualifying area's ancestors keeps this O(areas × depth).
        passed_over: set[str] = set()
        for b in qualifying:
            for a in _ancestors(b)[:-1]:
                if a not in qualifying:
                    continue
                if len(onb[a]) > len(onb[b]):
                    passed_over.add(b)
                elif len(onb[a]) == len(onb[b]):
                    passed_over.add(a)

        def chosen(a: str) -> bool:
            return a in qualifying and a not in passed_over

        out: list[PowerTrouble] = []
        # Open cuts first: kept while enough of the area is still on battery.
        for area in sorted(self._cuts):
            members = onb.get(area, [])
            swallowed = any(chosen(b) and len(onb[b]) > len(members)
                            for b in _ancestors(area)[:-1])
            if len(members) >= t.cut_min_nodes and not swallowed:
                names = tuple(sorted(n.node_id for n in members))
                if names != self._cuts[area]:
                    self._cuts[area] = names
                    out.append(self._cut_trouble(area, members, total.get(area, 0)))
                continue
            del self._cuts[area]
            for n in members:
                n.released_ms = now_ms   # a fresh wait before its own trouble
            out.append(PowerTrouble(POWER_CUT, area, {}, open=False, folded=swallowed))
        for area in sorted(qualifying):
            if area in self._cuts or not chosen(area):
                continue
            if any(_covers(c, area) for c in self._cuts):
                continue   # inside a cut already open
            members = onb[area]
            self._cuts[area] = tuple(sorted(n.node_id for n in members))
            out.append(self._cut_trouble(area, members, total.get(area, 0)))
        return out

    @staticmethod
    def _cut_trouble(area: str, members: list[_Node], total: int) -> PowerTrouble:
        since = min(n.battery_since_ms or 0 for n in members)
        return PowerTrouble(POWER_CUT, area, {
            "nodes": sorted(n.node_id for n in members), "count": len(members),
            "of": total, "since_ms": since})

    def _node_events(self, n: _Node, covered: bool, now_ms: int) -> list[PowerTrouble]:
        t = self.timers
        out: list[PowerTrouble] = []
        if n.battery_since_ms is None or covered:
            if n.on_reported:
                n.on_reported = False
                out.append(PowerTrouble(ON_BATTERY, n.node_id, {}, open=False,
                                        folded=covered))
        elif not n.on_reported:
            waited_from = max(n.battery_since_ms, n.released_ms)
            if now_ms - waited_from >= t.cut_window_s * 1000:
                n.on_reported = True
                out.append(PowerTrouble(ON_BATTERY, n.node_id, {
                    "area": n.area, "since_ms": n.battery_since_ms, "battery_pct": n.pct}))
        if n.pct is not None:
            if not n.low_reported and n.pct < t.low_battery_pct:
                n.low_reported = True
                out.append(PowerTrouble(LOW_BATTERY, n.node_id, {
                    "area": n.area, "battery_pct": n.pct, "threshold_pct": t.low_battery_pct}))
            elif n.low_reported and n.pct >= t.low_battery_pct + t.low_battery_margin_pct:
                n.low_reported = False
                out.append(PowerTrouble(LOW_BATTERY, n.node_id, {}, open=False))
        return out

    @staticmethod
    def _clear_node(n: _Node) -> list[PowerTrouble]:
        out = []
        if n.on_reported:
            n.on_reported = False
            out.append(PowerTrouble(ON_BATTERY, n.node_id, {}, open=False))
        if n.low_reported:
            n.low_reported = False
            out.append(PowerTrouble(LOW_BATTERY, n.node_id, {}, open=False))
        return out


class TroubleLog(Protocol):
    """What `record_power` needs of the store's troubles (hub/store/records.py)."""

    def open(self, kind: str, subject: str, detail: dict[str, Any] | None = None,
             now_ms: int | None = None) -> Any: ...

    def clear(self, kind: str, subject: str, now_ms: int | None = None) -> bool: ...


def record_power(troubles: TroubleLog, events: list[PowerTrouble], now_ms: int) -> None:
    """Open, update and clear the troubles a tick decided (the leader's tick thread)."""
    for ev in events:
        if not ev.open:
            troubles.clear(ev.kind, ev.subject, now_ms)
            if not ev.folded:
                log.info("%s cleared: %s", ev.kind, ev.subject)
            continue
        ref = troubles.open(ev.kind, ev.subject, dict(ev.detail), now_ms)
        if not getattr(ref, "new", True):
            continue
        if ev.kind == POWER_CUT:
            log.warning("MẤT ĐIỆN LƯỚI / MAINS POWER LOST in %s: %s nodes on battery",
                        ev.subject, ev.detail.get("count"))
        else:
            log.warning("%s: %s (%s)", ev.kind, ev.subject, ev.detail)
