"""Who may read the CAP feed, post a CAP alert or scrape a protected /metrics.

Machines talk to these endpoints, so they authenticate with `Authorization: Bearer
<token>`: an API token of the operators' API (table `api_tokens`, looked up by its
SHA-256 exactly as the API does; its role must be high enough), or a dedicated token
from the settings (`[integrations.cap] token`, `[integrations.metrics] token`), which
is compared in constant time and stands for the role the endpoint needs (hub-wide).
An API token limited to an area (api_tokens.area) reads and sounds only inside it
(hub/integrations/routes.py); the webhook log and a protected /metrics are hub-wide.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse

from .store import IntegrationStore

ROLES = ("viewer", "operator", "admin")   # as the operators' API orders them


class Refused(Exception):
    """A request without the right to this endpoint (401 or 403)."""

    def __init__(self, status: int, message: str, message_vi: str) -> None:
        super().__init__(message)
        self.status, self.message, self.message_vi = status, message, message_vi

    def response(self) -> JSONResponse:
        code = "unauthenticated" if self.status == 401 else "forbidden"
        headers = {"WWW-Authenticate": 'Bearer realm="tiengmo"'} if self.status == 401 else None
        return JSONResponse({"error": {"code": code, "message": self.message,
                                       "message_vi": self.message_vi}},
                            status_code=self.status, headers=headers)


@dataclass(frozen=True)
class Caller:
    actor: str                 # for the audit log
    area: str | None = None    # the token's area subtree (None: the whole hub)


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authorize(request: Request, store: Callable[[], IntegrationStore], *, role: str,
              dedicated: str | None, hub_wide: bool = False) -> Caller:
    """Who is calling (actor, area), or raise Refused; `hub_wide` refuses a token limited
    to an area."""
    token = bearer(request)
    if token is None:
        raise Refused(401, "Send an API token: Authorization: Bearer <token>.",
                      "Vui lòng gửi mã API: Authorization: Bearer <mã>.")
    if dedicated and hmac.compare_digest(token.encode(), dedicated.encode()):
        return Caller("token:integration")
    found = store().token_role(hashlib.sha256(token.encode("utf-8")).hexdigest())
    if found is None:
        raise Refused(401, "Unknown or revoked token.", "Mã API không đúng hoặc đã bị thu hồi.")
    name, have, area = found
    if have not in ROLES or ROLES.index(have) < ROLES.index(role):
        raise Refused(403, f"This needs the {role} role.", f"Cần quyền {role} để làm việc này.")
    if hub_wide and area is not None:
        raise Refused(403, "This needs a token without an area (hub-wide).",
                      "Việc này cần mã API toàn hệ thống (không giới hạn khu vực).")
    return Caller(f"token:{name}", area)
