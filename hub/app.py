"""The hub's HTTP app: /healthz, the operators' API (/api/v1, docs/api.md) and the
dashboard's static files (/ and /static/, from the `dashboard` package when installed).

Built by `create_app(hub)` on a started hub: nothing is created at import time.
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


def dashboard_dir() -> Path | None:
    """The dashboard's static folder (with index.html), or None if it is not installed."""
    try:
        import dashboard
    except ImportError:
        return None
    fn = getattr(dashboard, "static_dir", None)
    folder = Path(fn()) if callable(fn) else Path(dashboard.__file__).parent / "static"
    return folder if (folder / "index.html").is_file() else None


def create_app(hub: Hub, *, ping_s: float = 15.0, gap_wait_s: float = 2.0) -> FastAPI:
    # The OpenAPI description is served by the API itself, behind a login.
    app = FastAPI(title="tiengmo hub", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.hub = hub

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        # 503 while the hub cannot reach the broker or cannot write its database (disk
        # full): a load balancer or a systemd watchdog should see that alarms are not flowing.
        body: dict[str, Any] = hub.health()
        ok = bool(body["started"] and body["broker_connected"] and not body.get("store_error"))
        body["status"] = "ok" if ok else "degraded"
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

    static = dashboard_dir()
    if static is not None:
        index = static / "index.html"
        app.mount("/static", StaticFiles(directory=static), name="static")

        @app.get("/", include_in_schema=False)
        def dashboard_index() -> FileResponse:
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
    else:
        log.info("dashboard package not installed: serving the API only")
    return app
