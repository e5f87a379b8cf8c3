"""Log in, who am I, log out: the browser's session cookie and its CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from .. import security, serialize
from ..deps import SESSION_COOKIE, Ctx, Viewer, client_ip
from ..errors import ApiError
from ..schemas import LoginCreate, SessionPublic, UserPublic

router = APIRouter(tags=["session"])
FORGET_FAILURES_MS = 24 * 3600 * 1000


def _secure(request: Request, ctx: Ctx) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return ctx.settings.is_production or request.url.scheme == "https" or forwarded == "https"


def _throttled(retry_ms: int) -> ApiError:
    seconds = max(1, -(-retry_ms // 1000))
    return ApiError(429, "throttled", f"Too many failed logins; try again in {seconds} s.",
                    f"Đăng nhập sai quá nhiều lần; thử lại sau {seconds} giây.",
                    headers={"Retry-After": str(seconds)})


def _public(ctx: Ctx, user: UserPublic, csrf: str) -> SessionPublic:
    return SessionPublic(user=user, csrf_token=csrf, idle_expiry_s=ctx.settings.session_idle_s,
                         max_expiry_s=ctx.settings.session_max_s)


@router.post("/session", response_model=SessionPublic, operation_id="session_login",
             responses={401: {}, 429: {}})
def session_login(body: LoginCreate, request: Request, response: Response,
                  ctx: Ctx) -> SessionPublic:
    """Log in with a user name and password; sets the session cookie."""
    s, auth = ctx.settings, ctx.auth
    ip = client_ip(request)
    user_key, ip_key = f"user:{body.username.lower()}", f"ip:{ip}"
    locked = auth.locked_for_ms([user_key, ip_key])
    if locked:
        raise _throttled(locked)
    found = auth.password_hash(body.username.lower())
    ok = security.verify_password(found[1] if found else None, body.password)
    if not ok or found is None or not found[0].active:
        lock = auth.login_failed({user_key: s.login_max_failures,
                                  ip_key: s.login_ip_max_failures},
                                 lockout_ms=int(s.login_lockout_s * 1000),
                                 max_lockout_ms=int(s.login_lockout_max_s * 1000),
                                 forget_after_ms=FORGET_FAILURES_MS)
        if lock:
            ctx.store.audit.record("anonymous", "login_locked", body.username,
                                   {"ip": ip, "lockout_s": lock / 1000})
        raise ApiError(401, "bad_credentials", "Wrong user name or password.",
                       "Sai tên đăng nhập hoặc mật khẩu.")
    auth.login_succeeded(user_key)
    token = security.new_session_token()
    session = auth.create_session(found[0].id, security.digest(token), ip=ip,
                                  user_agent=request.headers.get("user-agent"))
    response.set_cookie(SESSION_COOKIE, token, max_age=int(s.session_max_s), path="/",
                        secure=_secure(request, ctx), httponly=True, samesite="strict")
    response.headers["Cache-Control"] = "no-store"
    return _public(ctx, serialize.user(session.user), security.csrf_token(s.secret, token))


@router.get("/session", response_model=SessionPublic, operation_id="session_get")
def session_get(who: Viewer, ctx: Ctx) -> SessionPublic:
    """Who is logged in, and the CSRF token to send with every change."""
    if who.user is None or who.session_token is None:
        # An API token: no cookie, so no CSRF token is needed.
        return _public(ctx, UserPublic(username=who.actor, role=who.role,  # type: ignore[arg-type]
                                       display_name=None), "")
    return _public(ctx, serialize.user(who.user),
                   security.csrf_token(ctx.settings.secret, who.session_token))


@router.delete("/session", status_code=204, operation_id="session_logout")
def session_logout(who: Viewer, request: Request, ctx: Ctx) -> Response:
    """Log out: the session ends on the hub, the cookie is cleared."""
    if who.session_token is not None:
        ctx.auth.delete_session(security.digest(who.session_token), who.actor)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=_secure(request, ctx),
                           httponly=True, samesite="strict")
    return response
