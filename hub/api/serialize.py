"""Store snapshots -> public schemas, for the routers and the live stream alike (so a
stream event carries exactly what the matching GET returns)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable

from ..escalation import next_escalation_ms
from ..events import StreamEvent
from ..settings import HubSettings
from ..store import AlarmInfo, CommandInfo, IncidentInfo, NodeInfo, ResultInfo, TroubleInfo
from ..store.auth import TokenInfo, UserInfo
from ..store.history import EventRef, History
from . import schemas as s

AREA_NAMES_TTL_S = 10.0


def user(u: UserInfo, area_name: str | None = None) -> s.UserPublic:
    return s.UserPublic(username=u.username, role=u.role,  # type: ignore[arg-type]
                        display_name=u.display_name, active=u.active, created_ms=u.created_ms,
                        last_login_ms=u.last_login_ms, area=u.area, area_name=area_name)


def token(t: TokenInfo) -> s.TokenPublic:
    return s.TokenPublic(id=t.id, name=t.name, role=t.role,  # type: ignore[arg-type]
                         prefix=t.prefix, created_ms=t.created_ms, created_by=t.created_by,
                         last_used_ms=t.last_used_ms, revoked_ms=t.revoked_ms, area=t.area)


def node(n: NodeInfo, sounding: bool) -> s.NodePublic:
    hb = n.heartbeat
    return s.NodePublic(
        id=n.id, name=n.name, area=n.area, households=n.households, lat=n.lat, lon=n.lon,
        enabled=n.enabled, registered=n.registered, registered_by=n.registered_by,
        reported_area=n.reported_area, status=n.status.value,
        status_since_ms=n.status_since_ms, sounding=sounding, last_seen_ms=n.last_seen_ms,
        last_heartbeat_ms=n.last_heartbeat_ms, boot_id=n.boot_id, version=n.version,
        outbox=hb.get("outbox"), power=hb.get("power"), battery_pct=hb.get("battery_pct"),
        rssi_dbm=hb.get("rssi_dbm"), temp_c=hb.get("temp_c"), outputs=list(n.outputs),
        buttons=[{"number": b, "kind": k} for b, k in n.buttons])


def alarm(a: AlarmInfo) -> s.AlarmPublic:
    return s.AlarmPublic(
        id=a.alarm_id, node_id=a.node_id, kind=a.kind, area=a.area, pressed_ms=a.pressed_ms,
        received_ms=a.received_ms, source=a.source, button=a.button, attempts=a.attempts,
        copies=a.copies, incident_id=a.incident_id, unknown_node=a.unknown_node,
        disabled_node=a.disabled_node, fanout_held=a.fanout_held, drill=a.drill,
        cancelled=a.cancelled, cancelled_ms=a.cancelled_ms, late=a.late)


def result(r: ResultInfo) -> s.ResultPublic:
    return s.ResultPublic(node_id=r.node_id, status=r.status, reason=r.reason, ts_ms=r.ts_ms,
                          received_ms=r.received_ms)


def command(c: CommandInfo, results: Iterable[ResultInfo] = ()) -> s.CommandPublic:
    p = c.payload
    pattern = p.get("pattern")
    name = pattern.get("name") if isinstance(pattern, dict) else pattern
    return s.CommandPublic(
        id=c.cmd_id, action=c.action, target_kind=c.target_kind, target=c.target,
        incident_id=c.incident_id, issued_ms=c.issued_ms, expires_ms=c.expires_ms,
        drill=c.drill, issued_by=c.issued_by, note=c.note, pattern=name,
        duration_s=p.get("duration_s"), priority=p.get("priority"),
        results=[result(r) for r in results])


def incident(i: IncidentInfo, area_names: dict[str, str],
             first_press: dict[str, int],
             next_escalation: Callable[[IncidentInfo], int | None] | None = None,
             ) -> s.IncidentPublic:
    return s.IncidentPublic(
        id=i.incident_id, kind=i.kind, area=i.area,
        area_name=area_names.get(i.area) if i.area else None,
        state=i.state.value,
        drill=i.drill, flagged=i.flagged, fanout_held=i.fanout_held, late=i.late,
        opened_ms=i.opened_ms,
        first_press_ms=first_press.get(i.incident_id), last_alarm_ms=i.last_alarm_ms,
        acknowledged_ms=i.acknowledged_ms, acknowledged_by=i.acknowledged_by,
        resolved_ms=i.resolved_ms, resolved_by=i.resolved_by,
        outcome=i.outcome.value if i.outcome else None,
        note=i.note, escalation_level=i.escalation_level, sounded_area=i.sounded_area,
        alarm_count=i.alarm_count, origin_node=i.origin_node,
        next_escalation_ms=next_escalation(i) if next_escalation else None)


def trouble(t: TroubleInfo) -> s.TroublePublic:
    return s.TroublePublic(id=t.id, kind=t.kind, subject=t.subject, state=t.state,
                           opened_ms=t.opened_ms, cleared_ms=t.cleared_ms, detail=t.detail)


class Presenter:
    """Builds public objects in batches (one query per kind, not per row)."""

    def __init__(self, history: History, settings: HubSettings | None = None) -> None:
        self.history = history
        # With the hub's settings, incidents carry `next_escalation_ms` (the board's
        # countdown), by the escalator's own rule.
        self._next: Callable[[IncidentInfo], int | None] | None = None
        if settings is not None:
            after, steps = settings.escalate_after_s, settings.policy.max_escalation
            self._next = lambda i: next_escalation_ms(i, after, steps)
        self._names: dict[str, str] = {}
        self._names_at = 0.0

    def area_names(self) -> dict[str, str]:
        # Areas change only with the registry or an operator's move: a short cache spares
        # a query per stream batch.
        if time.monotonic() - self._names_at > AREA_NAMES_TTL_S:
            self._names = self.history.area_names()
            self._names_at = time.monotonic()
        return self._names

    def incidents(self, items: list[IncidentInfo]) -> list[s.IncidentPublic]:
        names = self.area_names()
        first = self.history.first_presses(i.incident_id for i in items)
        return [incident(i, names, first, self._next) for i in items]

    def nodes(self, items: list[NodeInfo]) -> list[s.NodePublic]:
        sounding = self.history.sounding_nodes([n.id for n in items]) if items else set()
        return [node(n, n.id in sounding) for n in items]

    def commands(self, items: list[CommandInfo]) -> list[s.CommandPublic]:
        results = self.history.results_by_command(c.cmd_id for c in items) if items else {}
        return [command(c, results.get(c.cmd_id, ())) for c in items]

    def render(self, refs: list[EventRef]) -> list[StreamEvent]:
        """Event log rows -> stream events carrying each thing's state now."""
        h = self.history
        want: dict[str, set[str]] = {}
        for r in refs:
            want.setdefault(r.type, set()).add(r.subject)
        # An `escalation` event (hub/escalation.py) carries its incident, as it is now.
        inc = h.incidents_by_id(want.get("incident", set()) | want.get("escalation", set()))
        alarms = h.alarms_by_id(want.get("alarm", ()))
        nodes = h.nodes_by_id(want.get("node", ()))
        troubles = h.troubles_by_id(int(x) for x in want.get("trouble", ()) if x.isdigit())
        cmds = h.commands_by_id(want.get("command", ()))
        data: dict[tuple[str, str], str] = {}
        # Which areas each belongs to, for subscribers limited to an area (store/scope.py);
        # None: hub-wide, for everyone. A thing with none (gone, unknown node): hub-wide
        # accounts only.
        where: dict[tuple[str, str], tuple[str, ...] | None] = {}
        for pub in self.incidents(list(inc.values())):
            data["incident", pub.id] = data["escalation", pub.id] = pub.model_dump_json()
            where["incident", pub.id] = where["escalation", pub.id] = _areas(pub.area)
        for a in alarms.values():
            data["alarm", a.alarm_id] = alarm(a).model_dump_json()
            where["alarm", a.alarm_id] = _areas(a.area)
        for pn in self.nodes(list(nodes.values())):
            data["node", pn.id] = pn.model_dump_json()
            where["node", pn.id] = _areas(pn.area)
        trouble_areas = h.trouble_areas(troubles.values())
        for t in troubles.values():
            data["trouble", str(t.id)] = trouble(t).model_dump_json()
            where["trouble", str(t.id)] = trouble_areas[t.id]
        command_areas = h.command_areas(cmds.values())
        for pc in self.commands(list(cmds.values())):
            data["command", pc.id] = pc.model_dump_json()
            where["command", pc.id] = command_areas.get(pc.id, ())
        out = []
        for r in refs:
            key = (r.type, r.subject)
            body = data.get(key)
            if body is None:   # gone since (e.g. a deleted row): say so rather than skip
                body = json.dumps({"id": r.subject, "deleted": True})
            areas = where.get(key, ())
            out.append(StreamEvent(r.id, r.type, body, areas=areas or (),
                                   everyone=areas is None))
        return out


def _areas(area: str | None) -> tuple[str, ...]:
    return (area,) if area else ()
