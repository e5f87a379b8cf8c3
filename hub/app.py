"""The hub's HTTP app (minimal for now: /healthz). The API comes later.

Built by `create_app(hub)`: nothing is created at import time.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from .runtime import Hub


def create_app(hub: Hub) -> FastAPI:
    app = FastAPI(title="tiengmo hub", docs_url=None, redoc_url=None)
    app.state.hub = hub

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        # 503 while the hub cannot reach the broker: a load balancer or a
        # systemd watchdog should see that alarms are not flowing.
        body: dict[str, Any] = hub.health()
        ok = bool(body["started"] and body["broker_connected"])
        body["status"] = "ok" if ok else "degraded"
        return JSONResponse(body, status_code=200 if ok else 503)

    return app
