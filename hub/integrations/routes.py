"""HTTP routes of the integrations, mounted on the hub's app by `install`.

    GET  /metrics                      Prometheus text; open unless [integrations.metrics]
                                       token is set (then Bearer that token)
    GET  /api/v1/cap                   Atom feed of CAP 1.2 alerts (viewer token or the
                                       [integrations.cap] token)
    GET  /api/v1/cap/alerts/{id}       one CAP alert (application/cap+xml)
    POST /api/v1/cap                   take in a CAP alert and sound it (operator token or
                                       the [integrations.cap] token)
    GET  /api/v1/integrations/webhooks/deliveries   the delivery log (admin token)
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..errors import HubError
from ..store.scope import covers
from .auth import Caller, Refused, authorize
from .cap import CAP_MIME, CapAlert, CapBuilder
from .cap_intake import CapError, expired, map_areas, parse_cap, signal_for

if TYPE_CHECKING:
    from .runner import Integrations

log = logging.getLogger("tiengmo.hub.integrations.http")


def _error(status: int, code: str, message: str, message_vi: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message,
                                   "message_vi": message_vi}}, status_code=status)


def _unavailable() -> JSONResponse:
    return _error(503, "unavailable", "The hub is not running.", "Máy chủ chưa chạy.")


def builder(integ: Integrations) -> CapBuilder:
    store = integ.store()
    return CapBuilder(integ.hub.settings.hub_id, integ.settings.cap, store.area_names(),
                      list(store.nodes().values()))


def alerts(integ: Integrations, limit: int, scope: str | None = None) -> list[CapAlert]:
    """The newest alerts (of the area subtree `scope` only, when given)."""
    store = integ.store()
    b = builder(integ)
    out = [b.incident(inc) for inc in store.recent_incidents(limit, scope=scope)]
    out += [b.broadcast(cmd, note)
            for cmd, note in store.recent_broadcasts(limit, scope=scope)]
    return sorted(out, key=lambda a: a.sent_ms, reverse=True)[:limit]


def find_alert(integ: Integrations, identifier: str,
               scope: str | None = None) -> CapAlert | None:
    """The alert, or None if there is none (or it lies outside `scope`: the same 404)."""
    parts = identifier.split(":")
    if len(parts) == 5 and parts[:3] == ["urn", "tiengmo", "incident"]:
        inc = integ.store().incidents([parts[3]]).get(parts[3])
        if inc is None or inc.flagged or not covers(scope, inc.area):
            return None
        try:
            return builder(integ).incident(inc, upto=parts[4])
        except KeyError:
            return None
    if len(parts) == 4 and parts[:3] == ["urn", "tiengmo", "broadcast"]:
        for cmd, note in integ.store().recent_broadcasts(10_000, scope=scope):
            if cmd.cmd_id == parts[3]:
                return builder(integ).broadcast(cmd, note)
    return None


def take_in(integ: Integrations, body: bytes, caller: Caller) -> tuple[int, dict[str, Any]]:
    """Parse, map and sound one posted CAP alert; (HTTP status, JSON body). A token limited
    to an area maps the alert onto that subtree only: other areas are not the hub's to it."""
    actor, scope = caller.actor, caller.area
    msg = parse_cap(body)
    store = integ.store()
    before = store.cap_seen(msg.sender, msg.identifier)
    if before is not None:
        return 200, {"identifier": msg.identifier, "duplicate": True, "cmd_ids": before}
    hub_store = integ.hub.store
    areas = map_areas(msg, [a for a in hub_store.nodes.areas() if covers(scope, a.path)],
                      [n for n in store.nodes().values() if covers(scope, n.area)])
    now = hub_store.now_ms()
    cmd_ids: list[str] = []
    action = "none"
    if msg.msg_type in ("Alert", "Update") and msg.status in ("Actual", "Exercise", "Test"):
        if expired(msg, now):
            raise CapError(f"the alert expired at {msg.expires}: nothing sounded")
        services = integ.services()
        note = f"CAP {msg.sender} {msg.identifier}" + (f": {msg.headline}" if msg.headline
                                                        else "")
        cap = integ.settings.cap
        for area in areas:
            if msg.status == "Actual":
                cmd = services.broadcast(area, actor, signal_for(msg, cap.broadcast_signal),
                                         cap.broadcast_duration_s, message=note[:500])
                action = "broadcast"
            else:
                _inc, cmd = services.start_drill(area, actor, cap.broadcast_duration_s)
                action = "drill"
            cmd_ids.append(cmd.cmd_id)
    store.record_cap(sender=msg.sender, identifier=msg.identifier, sent=msg.sent,
                     msg_type=msg.msg_type, status=msg.status, actor=actor, areas=areas,
                     cmd_ids=cmd_ids)
    log.warning("CAP %s %s from %s (%s): %s in %s", msg.msg_type, msg.identifier, msg.sender,
                actor, action, ", ".join(areas))
    return 201 if cmd_ids else 202, {"identifier": msg.identifier, "duplicate": False,
                                     "action": action, "areas": areas, "cmd_ids": cmd_ids}


def _gate(integ: Integrations, request: Request, role: str, dedicated: str | None,
          hub_wide: bool = False) -> Response | Caller:
    """The answer that ends a request before its work (hub not started, caller refused),
    or the caller to go on."""
    if not integ.hub.started:
        return _unavailable()
    try:
        return authorize(request, integ.store, role=role, dedicated=dedicated,
                         hub_wide=hub_wide)
    except Refused as r:
        return r.response()


def install(app: FastAPI, integ: Integrations) -> None:
    """Add the routes as plain Starlette routes: they authenticate machines by Bearer token
    themselves (hub.integrations.auth) and are not part of the operators' API schema."""
    cap_token = integ.settings.cap.token

    def metrics(request: Request) -> Response:
        token = integ.settings.metrics.token
        if token:
            try:
                authorize(request, integ.store, role="admin", dedicated=token, hub_wide=True)
            except Refused as r:
                return r.response()
        return Response(integ.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def cap_feed(request: Request) -> Response:
        caller = _gate(integ, request, "viewer", cap_token)
        if isinstance(caller, Response):
            return caller
        doc = builder(integ).feed(alerts(integ, integ.settings.cap.feed_limit, caller.area),
                                  str(request.url.path))
        return Response(doc, media_type="application/atom+xml; charset=utf-8")

    def cap_alert(request: Request) -> Response:
        caller = _gate(integ, request, "viewer", cap_token)
        if isinstance(caller, Response):
            return caller
        identifier = str(request.path_params["identifier"])
        found = find_alert(integ, identifier, caller.area)
        if found is None:
            return _error(404, "not_found", f"No CAP alert {identifier!r}.",
                          "Không tìm thấy cảnh báo CAP này.")
        return Response(found.document(), media_type=CAP_MIME)

    async def cap_post(request: Request) -> Response:
        if not integ.hub.started:
            return _unavailable()
        body = await request.body()
        try:
            caller = await asyncio.to_thread(authorize, request, integ.store, role="operator",
                                             dedicated=cap_token)
            status, out = await asyncio.to_thread(take_in, integ, body, caller)
        except Refused as r:
            return r.response()
        except CapError as exc:
            return _error(422, "invalid_cap", f"CAP alert refused: {exc}",
                          f"Không nhận cảnh báo CAP: {exc}")
        except HubError as exc:
            return _error(409, "conflict", str(exc), f"Không thực hiện được: {exc}")
        return JSONResponse(out, status_code=status)

    def deliveries(request: Request) -> Response:
        # Every event of the hub goes through webhooks: a hub-wide token only.
        stop = _gate(integ, request, "admin", None, hub_wide=True)
        if isinstance(stop, Response):
            return stop
        try:
            limit = max(1, min(int(request.query_params.get("limit", "100")), 1000))
        except ValueError:
            return _error(422, "invalid_input", "limit must be an integer.",
                          "limit phải là số nguyên.")
        rows = integ.store().deliveries(event_type=request.query_params.get("event_type"),
                                        limit=limit)
        return JSONResponse([{
            "id": d.id, "subscriber": d.subscriber, "event_id": d.event_id,
            "event_type": d.event_type, "status": d.status, "attempts": d.attempts,
            "response_code": d.response_code, "error": d.error, "created_ms": d.created_ms,
            "delivered_ms": d.delivered_ms} for d in rows])

    app.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    app.add_route("/api/v1/cap", cap_feed, methods=["GET"], include_in_schema=False)
    app.add_route("/api/v1/cap", cap_post, methods=["POST"], include_in_schema=False)
    app.add_route("/api/v1/cap/alerts/{identifier}", cap_alert, methods=["GET"],
                  include_in_schema=False)
    app.add_route("/api/v1/integrations/webhooks/deliveries", deliveries, methods=["GET"],
                  include_in_schema=False)
