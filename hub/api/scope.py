"""Accounts limited to an area subtree (users.area, api_tokens.area; docs/security.md).

A scoped account's lists are filtered in the query (hub/store/scope.py), and whatever
lies outside its subtree is answered exactly as if it did not exist: 404 with the same
words, never 403, so ids and area paths of other communes do not leak. Actions check the
object (or the target area) first, so nothing outside is ever acted on. Accounts, tokens
and the audit log are hub-wide business: only an admin without an area (deps.HubAdmin).
"""

from __future__ import annotations

from ..store import CommandInfo, IncidentInfo, NodeInfo
from .deps import ApiContext, Principal
from .errors import ApiError, not_found


def incident(ctx: ApiContext, who: Principal, incident_id: str) -> IncidentInfo:
    inc = ctx.store.incidents.get(incident_id)
    if inc is None or not who.sees(inc.area):
        raise not_found(f"incident {incident_id!r}", f"vụ việc {incident_id!r}")
    return inc


def node(ctx: ApiContext, who: Principal, node_id: str) -> NodeInfo:
    found = ctx.store.nodes.get(node_id)
    if found is None or not who.sees(found.area):
        raise not_found(f"node {node_id!r}", f"nút {node_id!r}")
    return found


def command(ctx: ApiContext, who: Principal, cmd_id: str) -> CommandInfo:
    info = ctx.store.commands.get(cmd_id)
    if info is not None and who.area is not None:
        areas = ctx.history.command_areas([info]).get(cmd_id, ())
        if not any(who.sees(a) for a in areas):
            info = None
    if info is None:
        raise not_found(f"command {cmd_id!r}", f"lệnh {cmd_id!r}")
    return info


def area(ctx: ApiContext, who: Principal, path: str) -> None:
    """404 unless `path` is an area of the registry inside the account's subtree."""
    if not who.sees(path) or path not in {a.path for a in ctx.store.nodes.areas()}:
        raise not_found(f"area {path!r}", f"khu vực {path!r}")


def account_area(ctx: ApiContext, path: str | None) -> str | None:
    """An account's area as given (None or "" = the whole hub), checked against the
    registry's areas: 422 naming the problem if there is no such area."""
    if path is None or path.strip() in ("", "/"):
        return None
    path = path.strip().strip("/")
    if path not in {a.path for a in ctx.store.nodes.areas()}:
        raise ApiError(422, "unknown_area",
                       f"area {path!r} is not an area of the registry (see GET /api/v1/areas)",
                       f"Khu vực {path!r} không có trong danh mục khu vực.")
    return path
