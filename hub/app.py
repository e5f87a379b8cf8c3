"""The hub's HTTP app: /healthz, the operators' API (/api/v1, docs/api.md) and a
static web UI (/ and /static/) from the folder it is given.

Built by `create_app(hub, static_dir=...)` on a started hub: nothing is created at
import time. The hub imports nothing of `dashboard/` (ARCHITECTURE.md): the edge
(`tiengmo hub`, `tiengmo demo`) passes the dashboard's package data folder.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from . import api
from .api import limits
from .integrations import start_integrations
from .runtime import Hub

log = logging.getLogger("tiengmo.hub.http")


def create_app(hub: Hub, *, static_dir: Path | None = None, ping_s: float = 15.0,
               gap_wait_s: float = 2.0) -> FastAPI:
    """The app of a started `hub`; `static_dir` (a folder with index.html) is served at
    / and /static/, and without it the app serves the API only."""
    index = None
    if static_dir is not None:
        index = Path(static_dir) / "index.html"
        if not index.is_file():
            # Fail at start, not with a 404 on the operators' first visit.
            raise ValueError(f"static folder {static_dir}: no index.html in it")
    # The OpenAPI description is served by the API itself, behind a login.
    app = FastAPI(title="tiengmo hub", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.hub = hub

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        # 503 while the hub cannot reach the broker or cannot write its database (disk
        # full): a load balancer or a systemd watchdog should see that alarms are not flowing.
        # So does an alarm waiting longer than health_alarm_wait_s, or a backlog past
        # health_backlog_max (hub.runtime.Hub.health: `reason` says which).
        body: dict[str, Any] = hub.health()
        ok = body["status"] == "ok"
        return JSONResponse(body, status_code=200 if ok else 503)

    api.install(app, hub, ping_s=ping_s, gap_wait_s=gap_wait_s)
    # /metrics, the CAP feed and intake, webhooks, SMS, Home Assistant (docs/integrations.md)
    start_integrations(hub, app)

    @app.middleware("http")
    async def safety_headers(request: Request,
                             call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # Outermost, so every route (and anything mounted later) reads bounded bodies only.
    limits.install(app, hub.settings)

    if index is not None:
        page = index
        app.mount("/static", StaticFiles(directory=index.parent), name="static")

        @app.get("/", include_in_schema=False)
        def dashboard_index() -> FileResponse:
            return FileResponse(page, headers={"Cache-Control": "no-cache"})
    else:
        log.info("no static folder given: serving the API only")
    return app
