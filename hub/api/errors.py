"""Errors of the operators' API, answered as JSON in Vietnamese and English:

    {"error": {"code": "not_found", "message": "...", "message_vi": "..."}}
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Conflict, InvalidAction, NotFound, StoreError


class ApiError(Exception):
    """An API answer other than success, with its status, code and both languages."""

    def __init__(self, status: int, code: str, message: str, message_vi: str, *,
                 headers: dict[str, str] | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code
        self.message, self.message_vi = message, message_vi
        self.headers = headers
        self.detail = detail


def unauthenticated() -> ApiError:
    return ApiError(401, "unauthenticated", "Log in first (or send an API token).",
                    "Vui lòng đăng nhập (hoặc gửi mã API).",
                    headers={"WWW-Authenticate": 'Bearer realm="tiengmo"'})


def forbidden(role: str) -> ApiError:
    return ApiError(403, "forbidden", f"This needs the {role} role.",
                    f"Cần quyền {ROLE_VI.get(role, role)} để làm việc này.")


def not_found(what: str, what_vi: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} does not exist.", f"Không tìm thấy {what_vi}.")


ROLE_VI = {"viewer": "xem", "operator": "trực ban", "admin": "quản trị"}
_STATUS = {400: ("bad_request", "Yêu cầu không hợp lệ."),
           401: ("unauthenticated", "Vui lòng đăng nhập."),
           403: ("forbidden", "Không có quyền."),
           404: ("not_found", "Không tìm thấy."),
           405: ("method_not_allowed", "Phương thức không được hỗ trợ."),
           409: ("conflict", "Xung đột với trạng thái hiện tại."),
           429: ("too_many_requests", "Quá nhiều yêu cầu, vui lòng thử lại sau.")}


def _body(code: str, message: str, message_vi: str, detail: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "message_vi": message_vi}
    if detail is not None:
        err["detail"] = detail
    return {"error": err}


def install(app: FastAPI) -> None:
    """Answer every error of `app` in the JSON shape above."""

    @app.exception_handler(ApiError)
    async def api_error(_r: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_body(exc.code, exc.message, exc.message_vi, exc.detail),
                            status_code=exc.status, headers=exc.headers)

    @app.exception_handler(NotFound)
    async def hub_not_found(_r: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(_body("not_found", str(exc), "Không tìm thấy: " + str(exc)),
                            status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(_r: Request, exc: Conflict) -> JSONResponse:
        # `current`, `by`, `at_ms` (and e.g. `outcome`) beside the messages, so a client can
        # say in its own words who did what and when (docs/api.md, "Conflicts").
        body = _body("conflict", str(exc), exc.message_vi)
        body["error"].update(exc.detail())
        return JSONResponse(body, status_code=409)

    @app.exception_handler(InvalidAction)
    async def invalid_action(_r: Request, exc: InvalidAction) -> JSONResponse:
        return JSONResponse(_body("conflict", str(exc),
                                  "Không thực hiện được với trạng thái hiện tại: " + str(exc)),
                            status_code=409)

    @app.exception_handler(StoreError)
    async def store_error(_r: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(_body("unavailable", f"The database is unavailable: {exc}",
                                  "Cơ sở dữ liệu tạm thời không dùng được."),
                            status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def invalid_input(_r: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg")}
                  for e in exc.errors()]
        names = ", ".join(f["field"] for f in fields) or "the request"
        return JSONResponse(_body("invalid_input", f"Invalid input: {names}.",
                                  f"Dữ liệu không hợp lệ: {names}.", fields), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, vi = _STATUS.get(exc.status_code, ("error", "Đã xảy ra lỗi."))
        return JSONResponse(_body(code, str(exc.detail), vi), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))
