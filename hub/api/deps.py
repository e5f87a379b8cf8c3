"""Typed dependencies of the operators' API: the context, who is asking, and what role
they need.

Authentication: `Authorization: Bearer <token>` (integrations) or the session cookie
(browsers). A state-changing request made with the cookie must carry `X-CSRF-Token`
equal to the token bound to that session (double submit); a Bearer token needs none,
since a browser never adds it on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from ..events import EventFeed
from ..runtime import Hub
from ..services import Services
from ..settings import HubSettings
from ..store import Store
from ..store.auth import ROLES, AuthStore, UserInfo
from ..store.history import History
from ..store.scope import covers
from . import security
from .errors import ApiError, forbidden, unauthenticated

SESSION_COOKIE = "tiengmo_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class ApiContext:
    """Everything a request handler may use; built once by `create_app`."""

    hub: Hub
    settings: HubSettings
    services: Services
    auth: AuthStore
    history: History
    feed: EventFeed
    ping_s: float = 15.0
    app_openapi: Callable[[], dict[str, Any]] = field(default=dict)

    @property
    def store(self) -> Store:
        return self.hub.store


@dataclass(frozen=True)
class Principal:
    """Who is asking: a logged-in user (cookie) or an API token."""

    kind: str                     # "user" | "token"
    name: str
    role: str
    user: UserInfo | None = None
    session_token: str | None = None
    area: str | None = None       # limited to this area subtree; None: the whole hub

    def sees(self, path: str | None) -> bool:
        """Whether `path` lies in this account's area (hub/api/scope.py)."""
        return covers(self.area, path)

    @property
    def actor(self) -> str:
        """The name written into the audit log and onto incidents."""
        return self.name if self.kind == "user" else f"token:{self.name}"

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def get_ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.api
    return ctx


Ctx = Annotated[ApiContext, Depends(get_ctx)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _csrf_refused() -> ApiError:
    return ApiError(403, "csrf", f"Missing or wrong {CSRF_HEADER} header; reload the page.",
                    f"Thiếu hoặc sai mã {CSRF_HEADER}; vui lòng tải lại trang.")


def authenticate(request: Request, ctx: Ctx) -> Principal:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated()
        info = ctx.auth.token(security.digest(token.strip()))
        if info is None:
            raise unauthenticated()
        return Principal("token", info.name, info.role, area=info.area)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise unauthenticated()
    s = ctx.settings
    session = ctx.auth.session(security.digest(cookie), idle_ms=int(s.session_idle_s * 1000),
                               max_ms=int(s.session_max_s * 1000))
    if session is None:
        raise unauthenticated()
    if request.method not in SAFE_METHODS and not security.csrf_ok(
            s.secret, cookie, request.headers.get(CSRF_HEADER)):
        raise _csrf_refused()
    user = session.user
    return Principal("user", user.username, user.role, user=user, session_token=cookie,
                     area=user.area)


Authenticated = Annotated[Principal, Depends(authenticate)]


def _require(role: str) -> object:
    def dep(who: Authenticated) -> Principal:
        if not who.at_least(role):
            raise forbidden(role)
        return who
    dep.__name__ = f"require_{role}"
    return dep


def require_hub_admin(who: Authenticated) -> Principal:
    """An admin without an area: only such a one manages accounts and reads the audit log
    (an admin limited to a commune must not make itself, or anyone, hub-wide)."""
    if not who.at_least("admin"):
        raise forbidden("admin")
    if who.area is not None:
        raise ApiError(403, "forbidden", "This needs an admin without an area (hub-wide).",
                       "Việc này cần quản trị viên toàn hệ thống (không giới hạn khu vực).")
    return who


require_viewer = _require("viewer")
require_operator = _require("operator")
require_admin = _require("admin")

Viewer = Annotated[Principal, Depends(require_viewer)]
Operator = Annotated[Principal, Depends(require_operator)]
Admin = Annotated[Principal, Depends(require_admin)]
HubAdmin = Annotated[Principal, Depends(require_hub_admin)]
