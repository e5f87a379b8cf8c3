"""Areas (the registry's tree), the all-clear of an area, and the registry's households."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from .. import scope, serialize
from ..deps import Ctx, HubAdmin, Operator, Viewer
from ..schemas import AllClearCreate, AreaPublic, CommandPublic, HouseholdPublic

router = APIRouter(tags=["areas"])


@router.get("/areas", response_model=list[AreaPublic], operation_id="areas_list")
def areas_list(who: Viewer, ctx: Ctx) -> list[AreaPublic]:
    """Every area of the registry, parents before children; for an account limited to an
    area, that subtree and the areas above it (its own chain of names), nothing beside."""
    return [AreaPublic(path=a.path, name=a.name, level=a.level, depth=a.depth, parent=a.parent)
            for a in ctx.store.nodes.areas() if who.sees(a.path) or _above(a.path, who.area)]


def _above(path: str, area: str | None) -> bool:
    return area is not None and area.startswith(path + "/")


@router.post("/areas/{path:path}/all-clear", response_model=list[CommandPublic],
             operation_id="areas_all_clear", responses={404: {}, 409: {}})
def areas_all_clear(path: str, who: Operator, ctx: Ctx,
                    body: Annotated[AllClearCreate | None, Body()] = None) -> list[CommandPublic]:
    """Silence every sound in the area, then play its all-clear signal (hết báo động)."""
    scope.area(ctx, who, path)   # 404 also when outside the account's area
    cmds = ctx.services.all_clear(path, who.actor, body.duration_s if body else None)
    infos = [c for c in (ctx.store.commands.get(c.cmd_id) for c in cmds) if c is not None]
    return [serialize.command(c) for c in infos]


@router.get("/households", response_model=list[HouseholdPublic],
            operation_id="households_list")
def households_list(_who: HubAdmin, ctx: Ctx) -> list[HouseholdPublic]:
    """The households that may alarm by phone (the registry file's `[[households]]`), by
    area. Hub-wide admins only, like the accounts: the list holds people's phone
    numbers, and the registry file is the hub's, not a commune's."""
    reg = ctx.hub.registry
    rows = sorted(reg.households if reg is not None else (), key=lambda h: (h.area, h.id))
    return [HouseholdPublic(id=h.id, area=h.area, name=h.name, phones=list(h.phones))
            for h in rows]
