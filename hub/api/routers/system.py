"""The system at a glance, for the duty officer's strip (read-only).

    GET /api/v1/system   the hub's broker and database state, whether this replica
                         leads, and the counts the board must never hide: nodes online
                         of those expected, gongs that failed to sound, areas lost.

/healthz says the same health to watchdogs without a login; this one is behind the
login like the rest of the API and adds the counts, so a page can tell a frozen or
half-broken system from a quiet one in one request.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from ..deps import Ctx, Viewer

router = APIRouter(tags=["system"])

# Open troubles of these kinds are counted (the rest show on the troubles view).
FAILED_TO_SOUND = "failed_to_sound"
AREA_LOSS = "area_loss"
OPEN_LIMIT = 1000


class NodeCounts(BaseModel):
    expected: int   # registered and enabled: the ones that should be online
    online: int
    offline: int
    missing: int
    unknown: int


class SystemPublic(BaseModel):
    hub_id: str
    status: str                 # "ok" | "degraded" (the same rule as /healthz)
    reason: str | None          # why degraded, in plain words (as /healthz says it)
    started: bool
    broker_connected: bool
    database: str               # the SQLAlchemy dialect: "sqlite" | "postgresql"
    database_ok: bool
    database_error: str | None
    leader: bool                # this replica does the fan-out and escalation
    observer: bool              # a read-only replica (never leads)
    backlog: int
    server_time_ms: int
    nodes: NodeCounts
    failed_to_sound: int        # open "gong did not sound" troubles
    areas_lost: list[str]       # area paths with an open "area lost" trouble
    troubles_open: int


@router.get("/system", response_model=SystemPublic, operation_id="system_get")
def system_get(who: Viewer, ctx: Ctx) -> SystemPublic:
    """Health and the counts of what is wrong now (of the account's area, if limited)."""
    hub = ctx.hub
    health: dict[str, Any] = hub.health()
    store_error = health.get("store_error")
    ok = health.get("status") == "ok"   # the same rule as /healthz (Hub.health)
    counts = {"online": 0, "offline": 0, "missing": 0, "unknown": 0}
    expected = 0
    for status, n in ctx.store.nodes.status_counts(scope=who.area).items():
        expected += n
        counts[status if status in counts else "unknown"] += n
    troubles = ctx.store.troubles.find(True, limit=OPEN_LIMIT, scope=who.area)
    failed = sum(1 for t in troubles if t.kind == FAILED_TO_SOUND)
    areas = sorted({t.subject for t in troubles if t.kind == AREA_LOSS})
    return SystemPublic(
        hub_id=str(health.get("hub_id", "")), status="ok" if ok else "degraded",
        reason=health.get("reason"),
        started=bool(health["started"]), broker_connected=bool(health["broker_connected"]),
        database=ctx.store.engine.dialect.name, database_ok=not store_error,
        database_error=str(store_error) if store_error else None,
        leader=bool(health.get("leader")), observer=bool(ctx.settings.observer),
        backlog=int(health.get("backlog") or 0), server_time_ms=ctx.store.now_ms(),
        nodes=NodeCounts(expected=expected, **counts), failed_to_sound=failed,
        areas_lost=areas, troubles_open=len(troubles))
