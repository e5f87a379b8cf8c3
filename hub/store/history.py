"""Read-side queries for the operators' API: history with filters, batches by id, the
event log, and which nodes are sounding now.

`store.history` (a `History` on the store's unit of work) shares its engine;
everything here reads (but `prune_events`), and returns the store's frozen
snapshots.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, delete, func, or_, select

from ..db import models as m
from . import convert
from . import scope as sc
from .base import Work
from .snapshots import (
    AlarmInfo,
    CommandInfo,
    IncidentInfo,
    NodeInfo,
    ResultInfo,
    TroubleInfo,
)

I, A, C, R = m.Incident, m.Alarm, m.Command, m.CommandResult  # noqa: E741
MAX_LIMIT = 10_000
# A node reports `done` when a sound ends; if that report was lost, a sound is taken as
# over this long after its duration.
SOUNDING_SLACK_MS = 5_000
SOUNDING_LOOKBACK_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class EventRef:
    id: int
    ts_ms: int
    type: str
    subject: str


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    state: str | None = None
    kind: str | None = None
    area: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    outcome: str | None = None
    drill: bool | None = None
    before_ms: int | None = None   # cursor: opened before this
    scope: str | None = None       # the asking account's area subtree (store/scope.py)


@dataclass(frozen=True, slots=True)
class AlarmFilter:
    node_id: str | None = None
    area: str | None = None
    kind: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    drill: bool | None = None
    incident_id: str | None = None
    before_ms: int | None = None   # cursor: received before this
    scope: str | None = None       # the asking account's area subtree (store/scope.py)


def _under(col: Any, area: str) -> ColumnElement[bool]:
    return or_(col == area, col.startswith(area + "/", autoescape=True))


def _incident_where(q: Select[Any], f: IncidentFilter) -> Select[Any]:
    if f.state is not None:
        q = q.where(I.state == f.state)
    if f.kind is not None:
        q = q.where(I.kind == f.kind)
    if f.area is not None:
        q = q.where(_under(I.area, f.area))
    if f.since_ms is not None:
        q = q.where(I.opened_ms >= f.since_ms)
    if f.until_ms is not None:
        q = q.where(I.opened_ms < f.until_ms)
    if f.before_ms is not None:
        q = q.where(I.opened_ms < f.before_ms)
    if f.outcome is not None:
        q = q.where(I.outcome == f.outcome)
    if f.drill is not None:
        q = q.where(I.drill.is_(f.drill))
    if f.scope is not None:
        q = q.where(sc.incident_in(f.scope))
    return q


def _alarm_where(q: Select[Any], f: AlarmFilter) -> Select[Any]:
    if f.node_id is not None:
        q = q.where(A.node_id == f.node_id)
    if f.area is not None:
        q = q.where(_under(A.area, f.area))
    if f.kind is not None:
        q = q.where(A.kind == f.kind)
    if f.since_ms is not None:
        q = q.where(A.received_ms >= f.since_ms)
    if f.until_ms is not None:
        q = q.where(A.received_ms < f.until_ms)
    if f.before_ms is not None:
        q = q.where(A.received_ms < f.before_ms)
    if f.drill is not None:
        q = q.where(A.drill.is_(f.drill))
    if f.incident_id is not None:
        q = q.where(A.incident_id == f.incident_id)
    if f.scope is not None:
        q = q.where(sc.alarm_in(f.scope))
    return q


class History:
    """The operators' read side (and the event log's pruning)."""

    def __init__(self, work: Work) -> None:
        self._work = work

    @property
    def engine(self) -> Engine:
        return self._work.engine

    def now_ms(self) -> int:
        return self._work.now_ms()

    # --- history -------------------------------------------------------------------------------

    def incidents(self, f: IncidentFilter, limit: int = 100) -> list[IncidentInfo]:
        q = _incident_where(select(I), f).order_by(I.opened_ms.desc(), I.incident_id)
        with self._work.read() as s:
            return [convert.incident(r) for r in s.scalars(q.limit(min(limit, MAX_LIMIT)))]

    def alarms(self, f: AlarmFilter, limit: int = 100) -> list[AlarmInfo]:
        q = _alarm_where(select(A), f).order_by(A.received_ms.desc(), A.alarm_id)
        with self._work.read() as s:
            return [convert.alarm(r) for r in s.scalars(q.limit(min(limit, MAX_LIMIT)))]

    def first_presses(self, incident_ids: Iterable[str]) -> dict[str, int]:
        ids = list(incident_ids)
        if not ids:
            return {}
        q = select(A.incident_id, func.min(A.pressed_ms)).where(
            A.incident_id.in_(ids)).group_by(A.incident_id)
        with self._work.read() as s:
            return {iid: int(ms) for iid, ms in s.execute(q) if ms is not None}

    def area_names(self) -> dict[str, str]:
        with self._work.read() as s:
            return {path: name for path, name in s.execute(select(m.Area.path, m.Area.name))}

    # --- batches by id (for the live stream) ---------------------------------------------------

    def incidents_by_id(self, ids: Iterable[str]) -> dict[str, IncidentInfo]:
        with self._work.read() as s:
            return {r.incident_id: convert.incident(r)
                    for r in s.scalars(select(I).where(I.incident_id.in_(list(ids))))}

    def alarms_by_id(self, ids: Iterable[str]) -> dict[str, AlarmInfo]:
        with self._work.read() as s:
            return {r.alarm_id: convert.alarm(r)
                    for r in s.scalars(select(A).where(A.alarm_id.in_(list(ids))))}

    def nodes_by_id(self, ids: Iterable[str]) -> dict[str, NodeInfo]:
        with self._work.read() as s:
            return {r.id: convert.node(r)
                    for r in s.scalars(select(m.Node).where(m.Node.id.in_(list(ids))))}

    def troubles_by_id(self, ids: Iterable[int]) -> dict[int, TroubleInfo]:
        with self._work.read() as s:
            return {r.id: convert.trouble(r)
                    for r in s.scalars(select(m.Trouble).where(m.Trouble.id.in_(list(ids))))}

    def commands_by_id(self, ids: Iterable[str]) -> dict[str, CommandInfo]:
        with self._work.read() as s:
            return {r.cmd_id: convert.command(r)
                    for r in s.scalars(select(C).where(C.cmd_id.in_(list(ids))))}

    def results_by_command(self, cmd_ids: Iterable[str]) -> dict[str, list[ResultInfo]]:
        out: dict[str, list[ResultInfo]] = {}
        q = select(R).where(R.cmd_id.in_(list(cmd_ids))).order_by(R.received_ms, R.id)
        with self._work.read() as s:
            for r in s.scalars(q):
                out.setdefault(r.cmd_id, []).append(convert.result(r))
        return out

    def commands(self, *, incident_id: str | None = None, target: str | None = None,
                 action: str | None = None, before_ms: int | None = None,
                 limit: int = 100, scope: str | None = None) -> list[CommandInfo]:
        q = select(C)
        if scope is not None:
            q = q.where(sc.command_in(scope))
        if incident_id is not None:
            q = q.where(C.incident_id == incident_id)
        if target is not None:
            q = q.where(C.target == target)
        if action is not None:
            q = q.where(C.action == action)
        if before_ms is not None:
            q = q.where(C.issued_ms < before_ms)
        q = q.order_by(C.issued_ms.desc(), C.cmd_id).limit(min(limit, MAX_LIMIT))
        with self._work.read() as s:
            return [convert.command(r) for r in s.scalars(q)]

    # --- which areas a thing belongs to (for scoped accounts, store/scope.py) --------------

    def command_areas(self, items: Iterable[CommandInfo]) -> dict[str, tuple[str, ...]]:
        """Per command: its target area, its target node's area, its incident's area."""
        cmds = list(items)
        nodes = self.node_areas(c.target for c in cmds if c.target_kind == "node")
        incs = self.incidents_by_id({c.incident_id for c in cmds if c.incident_id})
        out: dict[str, tuple[str, ...]] = {}
        for c in cmds:
            areas: list[str | None] = [c.target if c.target_kind == "area"
                                       else nodes.get(c.target)]
            inc = incs.get(c.incident_id) if c.incident_id else None
            areas.append(inc.area if inc else None)
            out[c.cmd_id] = tuple(a for a in areas if a)
        return out

    def trouble_areas(self, items: Iterable[TroubleInfo]) -> dict[int, tuple[str, ...] | None]:
        """Per trouble: the area it is about (its subject's), or None for a hub-wide one."""
        troubles = list(items)
        nodes = self.node_areas(t.subject for t in troubles)
        out: dict[int, tuple[str, ...] | None] = {}
        for t in troubles:
            node_area = nodes.get(t.subject)
            out[t.id] = (None if t.kind in sc.HUB_WIDE_TROUBLES
                         else (node_area,) if node_area else (t.subject,))
        return out

    def node_areas(self, ids: Iterable[str]) -> dict[str, str]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        q = select(m.Node.id, m.Node.area).where(m.Node.id.in_(wanted))
        with self._work.read() as s:
            return {i: a for i, a in s.execute(q) if a}

    # --- what is sounding ----------------------------------------------------------------------

    def sounding_nodes(self, node_ids: Iterable[str] | None = None) -> set[str]:
        """Nodes that reported `started` for a sound or test and neither `done` nor `failed`
        since, within the sound's duration (plus slack, for a lost `done`)."""
        now = self.now_ms()
        q = select(R.node_id, R.cmd_id, R.status, R.received_ms, C.payload, C.action).join(
            C, C.cmd_id == R.cmd_id).where(R.received_ms > now - SOUNDING_LOOKBACK_MS,
                                          C.action.in_(("sound", "test")))
        if node_ids is not None:
            q = q.where(R.node_id.in_(list(node_ids)))
        started: dict[tuple[str, str], int] = {}
        ended: set[tuple[str, str]] = set()
        with self._work.read() as s:
            for node_id, cmd_id, status, received, payload, _action in s.execute(q):
                key = (node_id, cmd_id)
                if status == "started":
                    duration_s = (payload or {}).get("duration_s") or 60
                    started[key] = int(received) + int(duration_s) * 1000 + SOUNDING_SLACK_MS
                else:
                    ended.add(key)
        return {node for (node, cmd), until in started.items()
                if (node, cmd) not in ended and until > now}

    # --- the event log -------------------------------------------------------------------------

    def last_event_id(self) -> int:
        with self._work.read() as s:
            return int(s.scalar(select(func.max(m.EventRow.id))) or 0)

    def first_event_id(self) -> int:
        with self._work.read() as s:
            return int(s.scalar(select(func.min(m.EventRow.id))) or 0)

    def events_after(self, after_id: int, limit: int = 1000) -> list[EventRef]:
        q = select(m.EventRow).where(m.EventRow.id > after_id).order_by(
            m.EventRow.id).limit(limit)
        with self._work.read() as s:
            return [EventRef(r.id, r.ts_ms, r.type, r.subject) for r in s.scalars(q)]

    def events_between(self, ids: Iterable[int]) -> list[EventRef]:
        q = select(m.EventRow).where(m.EventRow.id.in_(list(ids))).order_by(m.EventRow.id)
        with self._work.read() as s:
            return [EventRef(r.id, r.ts_ms, r.type, r.subject) for r in s.scalars(q)]

    def prune_events(self, before_ms: int) -> int:
        """Drop events older than `before_ms`, always keeping the newest one (so the next
        id is still known after a quiet week)."""
        def tx(s: Any) -> int:
            newest = s.scalar(select(func.max(m.EventRow.id))) or 0
            done = s.execute(delete(m.EventRow).where(m.EventRow.ts_ms < before_ms,
                                                      m.EventRow.id < newest))
            return int(done.rowcount or 0)

        return self._work.write(tx)
