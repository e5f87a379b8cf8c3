"""Alarms: every press the hub stored, with filters, and CSV."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ...store.history import AlarmFilter
from ..csv_export import Lang, LocalTime, csv_response, header
from ..deps import Ctx, Viewer
from ..errors import not_found
from ..schemas import INT64_MAX, AlarmPublic
from ..serialize import alarm

router = APIRouter(tags=["alarms"])
EXPORT_LIMIT = 10_000


def alarm_filter(node_id: str | None = None, area: str | None = None,
                 kind: str | None = None, drill: bool | None = None,
                 incident_id: str | None = None,
                 since_ms: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
                 until_ms: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
                 before: Annotated[int | None, Query(
                     ge=0, le=INT64_MAX, description="cursor: received before (ms)")] = None,
                 ) -> AlarmFilter:
    return AlarmFilter(node_id=node_id, area=area, kind=kind, since_ms=since_ms,
                       until_ms=until_ms, drill=drill, incident_id=incident_id,
                       before_ms=before)


Filter = Annotated[AlarmFilter, Depends(alarm_filter)]


@router.get("/alarms", response_model=list[AlarmPublic], operation_id="alarms_list")
def alarms_list(who: Viewer, ctx: Ctx, f: Filter,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AlarmPublic]:
    """Alarms, newest first; page with `before` = the last one's received_ms."""
    return [alarm(a) for a in ctx.history.alarms(replace(f, scope=who.area), limit)]


CSV_HEADER = ["alarm_id", "received_at", "pressed_at", "node_id", "area", "kind", "source",
              "button", "incident_id", "attempts", "copies", "unknown_node", "disabled_node",
              "fanout_held", "drill", "cancelled", "cancelled_at", "received_ms", "pressed_ms"]
CSV_HEADER_VI = {
    "alarm_id": "mã báo động", "received_at": "thời gian nhận", "pressed_at": "thời gian bấm",
    "node_id": "mã nút", "area": "khu vực", "kind": "loại", "source": "nguồn",
    "button": "nút bấm", "incident_id": "mã vụ việc", "attempts": "số lần gửi",
    "copies": "số bản nhận", "unknown_node": "nút lạ", "disabled_node": "nút bị tắt",
    "fanout_held": "tạm không phát", "drill": "diễn tập", "cancelled": "đã hủy",
    "cancelled_at": "thời gian hủy", "received_ms": "nhận (ms)", "pressed_ms": "bấm (ms)"}


@router.get("/alarms.csv", operation_id="alarms_csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def alarms_csv(who: Viewer, ctx: Ctx, f: Filter,
               limit: Annotated[int, Query(ge=1, le=EXPORT_LIMIT)] = EXPORT_LIMIT,
               lang: Lang = "en") -> Response:
    """The same filters as the list, as CSV (UTF-8 with BOM, for Excel), times in the
    hub's `tz`; `lang=vi` names the columns in Vietnamese."""
    iso = LocalTime(ctx.settings.tz)
    rows = ([a.alarm_id, iso(a.received_ms), iso(a.pressed_ms), a.node_id, a.area, a.kind,
             a.source, a.button, a.incident_id, a.attempts, a.copies, a.unknown_node,
             a.disabled_node, a.fanout_held, a.drill, a.cancelled, iso(a.cancelled_ms),
             a.received_ms, a.pressed_ms]
            for a in ctx.history.alarms(replace(f, scope=who.area), limit))
    return csv_response("tiengmo-alarms.csv", header(CSV_HEADER, lang, CSV_HEADER_VI), rows)


@router.get("/alarms/{alarm_id}", response_model=AlarmPublic, operation_id="alarms_get",
            responses={404: {}})
def alarms_get(alarm_id: str, who: Viewer, ctx: Ctx) -> AlarmPublic:
    found = ctx.store.alarms.get(alarm_id)
    if found is None or not who.sees(found.area):   # outside the account's area: as absent
        raise not_found(f"alarm {alarm_id!r}", f"báo động {alarm_id!r}")
    return alarm(found)
