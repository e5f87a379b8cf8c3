"""Commands the hub sent (with the nodes' results), and the operator's own: broadcasts
of a warning to an area, and drills."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...errors import PolicyError
from ...store import CommandInfo
from .. import scope
from ..deps import Ctx, Operator, Principal, Viewer
from ..errors import ApiError
from ..schemas import INT64_MAX, BroadcastCreate, CommandPublic, DrillCreate, DrillPublic
from ..serialize import Presenter

router = APIRouter(tags=["commands"])


def _command(ctx: Ctx, who: Principal, cmd_id: str) -> CommandInfo:
    return scope.command(ctx, who, cmd_id)   # 404 also when outside the account's area


@router.get("/commands", response_model=list[CommandPublic], operation_id="commands_list")
def commands_list(who: Viewer, ctx: Ctx, incident_id: str | None = None,
                  target: str | None = None, action: str | None = None,
                  before: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[CommandPublic]:
    """Commands, newest first; page with `before` = the last one's issued_ms."""
    items = ctx.history.commands(incident_id=incident_id, target=target, action=action,
                                 before_ms=before, limit=limit, scope=who.area)
    return Presenter(ctx.history).commands(items)


@router.get("/commands/{cmd_id}", response_model=CommandPublic, operation_id="commands_get",
            responses={404: {}})
def commands_get(cmd_id: str, who: Viewer, ctx: Ctx) -> CommandPublic:
    return Presenter(ctx.history).commands([_command(ctx, who, cmd_id)])[0]


@router.post("/broadcasts", response_model=CommandPublic, status_code=201,
             operation_id="broadcasts_create", responses={404: {}, 409: {}})
def broadcasts_create(body: BroadcastCreate, who: Operator, ctx: Ctx) -> CommandPublic:
    """Sound a warning (cảnh báo) in an area: an alarm kind or a pattern name, for
    `duration_s`, with a message kept on the command."""
    scope.area(ctx, who, body.area)   # 404 also when outside the account's area
    try:   # a signal the policy does not know is bad input, refused before anything is sent
        ctx.settings.policy.warning(body.area, body.signal, body.duration_s)
    except PolicyError as exc:
        raise ApiError(422, "invalid_input", f"signal {body.signal!r}: {exc}",
                       f"Tín hiệu {body.signal!r} không có trong quy ước.") from None
    cmd = ctx.services.broadcast(body.area, who.actor, body.signal, body.duration_s,
                                 body.message or None)
    return Presenter(ctx.history).commands([_command(ctx, who, cmd.cmd_id)])[0]


@router.post("/drills", response_model=DrillPublic, status_code=201,
             operation_id="drills_start", responses={404: {}, 409: {}})
def drills_start(body: DrillCreate, who: Operator, ctx: Ctx) -> DrillPublic:
    """Start a drill (diễn tập) in an area: a drill incident and the drill signal."""
    scope.area(ctx, who, body.area)   # 404 also when outside the account's area
    inc, cmd = ctx.services.start_drill(body.area, who.actor, body.duration_s)
    p = Presenter(ctx.history)
    return DrillPublic(incident=p.incidents([inc])[0],
                       command=p.commands([_command(ctx, who, cmd.cmd_id)])[0])


@router.post("/drills/{incident_id}/stop", response_model=CommandPublic,
             operation_id="drills_stop", responses={404: {}, 409: {}})
def drills_stop(incident_id: str, who: Operator, ctx: Ctx) -> CommandPublic:
    """Stop a drill: silence it and close its incident (outcome `test`)."""
    scope.incident(ctx, who, incident_id)
    cmd = ctx.services.stop_drill(incident_id, who.actor)
    return Presenter(ctx.history).commands([_command(ctx, who, cmd.cmd_id)])[0]
