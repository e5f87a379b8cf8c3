"""The operators' HTTP API under /api/v1 (docs/api.md): `install(app, hub)` adds it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from ..events import EventFeed
from ..runtime import Hub
from . import errors
from .deps import ApiContext, Ctx, Viewer
from .routers import (
    alarms,
    areas,
    audit,
    commands,
    incidents,
    nodes,
    session,
    stream,
    system,
    tokens,
    troubles,
    users,
)
from .serialize import Presenter

PREFIX = "/api/v1"
ROUTERS = (session, areas, nodes, incidents, alarms, commands, troubles, audit, users, tokens,
           stream, system)


def _meta() -> APIRouter:
    router = APIRouter(tags=["meta"])

    @router.get("/openapi.json", operation_id="openapi_schema", include_in_schema=False)
    def openapi_schema(_who: Viewer, ctx: Ctx) -> dict[str, Any]:
        """The OpenAPI description of this API (for integrators; needs a login or token)."""
        return ctx.app_openapi()

    return router


def install(app: FastAPI, hub: Hub, *, ping_s: float = 15.0, gap_wait_s: float = 2.0) -> ApiContext:
    """Build the API's context on the started `hub`, start its event feed, add the routes."""
    settings = hub.settings
    if hub.link is None:
        raise RuntimeError("start the hub before building its API")
    history = hub.store.history
    feed = EventFeed(history, Presenter(history, settings).render, poll_s=settings.stream_poll_s,
                     gap_wait_s=gap_wait_s, retention_s=settings.event_retention_s,
                     alive=lambda: hub.started).start()
    ctx = ApiContext(hub=hub, settings=settings, services=hub.services(),
                     auth=hub.store.auth, history=history, feed=feed, ping_s=ping_s,
                     app_openapi=app.openapi)
    app.state.api = ctx
    errors.install(app)
    for module in ROUTERS:
        app.include_router(module.router, prefix=PREFIX)
    app.include_router(_meta(), prefix=PREFIX)
    return ctx
