"""Incidents: the board, history with filters, CSV, and the operator's actions on one."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ...store.history import AlarmFilter, IncidentFilter
from .. import scope
from ..csv_export import Lang, LocalTime, csv_response, header
from ..deps import Ctx, Operator, Principal, Viewer
from ..schemas import (
    INT64_MAX,
    AcknowledgeCreate,
    CommandPublic,
    IncidentDetail,
    IncidentPublic,
    OutcomeName,
    ResolveCreate,
)
from ..serialize import Presenter, alarm

router = APIRouter(tags=["incidents"])
EXPORT_LIMIT = 10_000


def incident_filter(
        state: Literal["open", "acknowledged", "resolved", "cancelled"] | None = None,
        kind: str | None = None, area: str | None = None,
        drill: bool | None = None,
        since_ms: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
        until_ms: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
        outcome: OutcomeName | None = None,
        before: Annotated[int | None, Query(ge=0, le=INT64_MAX,
                                           description="cursor: opened before (ms)")]
        = None) -> IncidentFilter:
    return IncidentFilter(state=state, kind=kind, area=area, since_ms=since_ms,
                          until_ms=until_ms, outcome=outcome, drill=drill, before_ms=before)


Filter = Annotated[IncidentFilter, Depends(incident_filter)]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/incidents", response_model=list[IncidentPublic], operation_id="incidents_list")
def incidents_list(who: Viewer, ctx: Ctx, f: Filter, limit: Limit = 100) -> list[IncidentPublic]:
    """Incidents, newest first; page with `before` = the last one's opened_ms."""
    items = ctx.history.incidents(replace(f, scope=who.area), limit)
    return Presenter(ctx.history, ctx.settings).incidents(items)


CSV_HEADER = ["incident_id", "opened_at", "kind", "area", "area_name", "state", "drill",
              "flagged", "origin_node", "alarm_count", "first_press_at", "acknowledged_at",
              "acknowledged_by", "resolved_at", "resolved_by", "outcome", "note",
              "escalation_level", "sounded_area", "opened_ms"]
CSV_HEADER_VI = {
    "incident_id": "mã vụ việc", "opened_at": "thời gian mở", "kind": "loại",
    "area": "khu vực", "area_name": "tên khu vực", "state": "trạng thái",
    "drill": "diễn tập", "flagged": "nút lạ/bị tắt", "origin_node": "nút báo",
    "alarm_count": "số báo động", "first_press_at": "lần bấm đầu",
    "acknowledged_at": "thời gian tiếp nhận", "acknowledged_by": "người tiếp nhận",
    "resolved_at": "thời gian kết thúc", "resolved_by": "người kết thúc",
    "outcome": "kết quả", "note": "ghi chú", "escalation_level": "bậc nâng cấp",
    "sounded_area": "khu vực đã báo", "opened_ms": "mở (ms)"}


@router.get("/incidents.csv", operation_id="incidents_csv",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def incidents_csv(who: Viewer, ctx: Ctx, f: Filter,
                  limit: Annotated[int, Query(ge=1, le=EXPORT_LIMIT)] = EXPORT_LIMIT,
                  lang: Lang = "en") -> Response:
    """The same filters as the list, as CSV (UTF-8 with BOM, for Excel), times in the
    hub's `tz`; `lang=vi` names the columns in Vietnamese."""
    iso = LocalTime(ctx.settings.tz)
    items = Presenter(ctx.history, ctx.settings).incidents(
        ctx.history.incidents(replace(f, scope=who.area), limit))
    rows = ([i.id, iso(i.opened_ms), i.kind, i.area, i.area_name, i.state, i.drill, i.flagged,
             i.origin_node, i.alarm_count, iso(i.first_press_ms), iso(i.acknowledged_ms),
             i.acknowledged_by, iso(i.resolved_ms), i.resolved_by, i.outcome, i.note,
             i.escalation_level, i.sounded_area, i.opened_ms] for i in items)
    return csv_response("tiengmo-incidents.csv", header(CSV_HEADER, lang, CSV_HEADER_VI), rows)


def _public(ctx: Ctx, who: Principal, incident_id: str) -> IncidentPublic:
    inc = scope.incident(ctx, who, incident_id)   # 404 also when outside the account's area
    return Presenter(ctx.history, ctx.settings).incidents([inc])[0]


@router.get("/incidents/{incident_id}", response_model=IncidentDetail,
            operation_id="incidents_get", responses={404: {}})
def incidents_get(incident_id: str, who: Viewer, ctx: Ctx) -> IncidentDetail:
    """One incident with its alarms and the commands sent for it (with nodes' results)."""
    base = _public(ctx, who, incident_id)
    alarms = ctx.history.alarms(AlarmFilter(incident_id=incident_id), EXPORT_LIMIT)
    cmds = Presenter(ctx.history).commands(
        list(reversed(ctx.history.commands(incident_id=incident_id, limit=1000))))
    return IncidentDetail(**base.model_dump(), alarms=[alarm(a) for a in alarms],
                          commands=cmds)


@router.post("/incidents/{incident_id}/acknowledge", response_model=IncidentPublic,
             operation_id="incidents_acknowledge", responses={404: {}, 409: {}})
def incidents_acknowledge(incident_id: str, who: Operator, ctx: Ctx,
                          body: AcknowledgeCreate | None = None) -> IncidentPublic:
    """Take the incident (tiếp nhận): the nodes of its alarms show it. Sending it again is
    a retry (200); if someone else took or closed it first: 409 saying who and when."""
    _public(ctx, who, incident_id)
    ctx.services.acknowledge(incident_id, who.actor,
                             expected_state=body.expected_state if body else None)
    return _public(ctx, who, incident_id)


@router.post("/incidents/{incident_id}/resolve", response_model=IncidentPublic,
             operation_id="incidents_resolve", responses={404: {}, 409: {}})
def incidents_resolve(incident_id: str, body: ResolveCreate, who: Operator,
                      ctx: Ctx) -> IncidentPublic:
    """Close the incident with what it was (real, false_alarm, prank, test) and a note;
    its sound is silenced. Closed already: 409 (who, when, which outcome), unless it is the
    same officer's retry with the same outcome (200)."""
    _public(ctx, who, incident_id)
    ctx.services.resolve(incident_id, who.actor, body.outcome, body.note or None,
                         expected_state=body.expected_state)
    return _public(ctx, who, incident_id)


@router.post("/incidents/{incident_id}/silence", response_model=CommandPublic,
             operation_id="incidents_silence", responses={404: {}, 409: {}})
def incidents_silence(incident_id: str, who: Operator, ctx: Ctx) -> CommandPublic:
    """Silence the incident's sound where it sounded; the incident stays open."""
    _public(ctx, who, incident_id)
    cmd = ctx.services.silence(who.actor, incident_id=incident_id)
    info = ctx.store.commands.get(cmd.cmd_id)
    assert info is not None
    return Presenter(ctx.history).commands([info])[0]
