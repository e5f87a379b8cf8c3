"""ORM rows -> frozen snapshots (the only way data leaves the store)."""

from __future__ import annotations

from ..db import models as m
from .snapshots import (
    AlarmInfo,
    AreaInfo,
    AuditEntry,
    CommandInfo,
    IncidentInfo,
    IncidentState,
    NodeInfo,
    NodeStatus,
    Outcome,
    ResultInfo,
    TroubleInfo,
)


def area(row: m.Area) -> AreaInfo:
    return AreaInfo(row.path, row.name, row.level, row.depth, row.parent)


def node(row: m.Node) -> NodeInfo:
    buttons = tuple(sorted((int(k), str(v)) for k, v in (row.buttons or {}).items()))
    return NodeInfo(
        id=row.id, area=row.area, name=row.name, households=row.households, lat=row.lat,
        lon=row.lon, enabled=bool(row.enabled), registered=bool(row.registered),
        registered_by=row.registered_by, reported_area=row.reported_area,
        status=NodeStatus(row.status), status_since_ms=row.status_since_ms,
        boot_id=row.boot_id, version=row.version, outputs=tuple(row.outputs or ()),
        buttons=buttons, last_seen_ms=row.last_seen_ms,
        last_heartbeat_ms=row.last_heartbeat_ms, heartbeat=dict(row.heartbeat or {}),
    )


def alarm(row: m.Alarm) -> AlarmInfo:
    return AlarmInfo(
        alarm_id=row.alarm_id, node_id=row.node_id, kind=row.kind, pressed_ms=row.pressed_ms,
        received_ms=row.received_ms, source=row.source, button=row.button,
        attempts=row.attempts, copies=row.copies, incident_id=row.incident_id, area=row.area,
        unknown_node=bool(row.unknown_node), disabled_node=bool(row.disabled_node),
        fanout_held=bool(row.fanout_held), drill=bool(row.drill), cancelled=bool(row.cancelled),
        cancelled_ms=row.cancelled_ms, late=bool(row.late),
    )


def incident(row: m.Incident) -> IncidentInfo:
    return IncidentInfo(
        incident_id=row.incident_id, kind=row.kind, area=row.area, origin_node=row.origin_node,
        state=IncidentState(row.state), opened_ms=row.opened_ms,
        last_alarm_ms=row.last_alarm_ms, alarm_count=row.alarm_count,
        acknowledged_ms=row.acknowledged_ms, acknowledged_by=row.acknowledged_by,
        resolved_ms=row.resolved_ms, resolved_by=row.resolved_by,
        outcome=Outcome(row.outcome) if row.outcome else None, note=row.note,
        drill=bool(row.drill), escalation_level=row.escalation_level,
        escalated_ms=row.escalated_ms, sounded_area=row.sounded_area,
        fanned_out=bool(row.fanned_out), flagged=bool(row.flagged),
        fanout_held=bool(row.fanout_held), late=bool(row.late),
    )


def command(row: m.Command) -> CommandInfo:
    return CommandInfo(
        cmd_id=row.cmd_id, action=row.action, target_kind=row.target_kind, target=row.target,
        incident_id=row.incident_id, payload=dict(row.payload), issued_ms=row.issued_ms,
        expires_ms=row.expires_ms, drill=bool(row.drill), issued_by=row.issued_by,
        note=row.note,
    )


def result(row: m.CommandResult) -> ResultInfo:
    return ResultInfo(row.cmd_id, row.node_id, row.status, row.reason, row.ts_ms,
                      row.received_ms)


def trouble(row: m.Trouble) -> TroubleInfo:
    return TroubleInfo(row.id, row.kind, row.subject, row.state, row.opened_ms, row.cleared_ms,
                       dict(row.detail or {}))


def audit(row: m.AuditRow) -> AuditEntry:
    return AuditEntry(row.id, row.ts_ms, row.actor, row.action, row.subject,
                      dict(row.detail or {}))
