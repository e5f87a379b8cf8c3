"""Log in, who am I, log out: the browser's session cookie and its CSRF token.

Login throttling (hub/store/throttle.py, docs/api.md): wrong passwords lock a user out
only at the client they came from (the address, or this browser if it is a known device
of that user); guessing from many places only slows logins down, and never the browser
the user has logged in from before. The client's address is the peer's own unless a
proxy named in `trusted_proxies` forwarded the request (hub/serving.py)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from .. import security, serialize
from ..deps import SESSION_COOKIE, Ctx, Viewer, client_ip
from ..errors import ApiError
from ..schemas import LoginCreate, SessionPublic, UserPublic

router = APIRouter(tags=["session"])
FORGET_FAILURES_MS = 24 * 3600 * 1000
DEVICE_COOKIE = "tiengmo_device"


def _secure(request: Request, ctx: Ctx) -> bool:
    # Never the raw X-Forwarded-Proto header: anyone could send it. uvicorn sets the
    # scheme from it only for a proxy named in `trusted_proxies` (hub/serving.py).
    return ctx.settings.is_production or request.url.scheme == "https"


def _throttled(retry_ms: int) -> ApiError:
    seconds = max(1, -(-retry_ms // 1000))
    return ApiError(429, "throttled", f"Too many failed logins; try again in {seconds} s.",
                    f"Đăng nhập sai quá nhiều lần; thử lại sau {seconds} giây.",
                    headers={"Retry-After": str(seconds)})


def _public(ctx: Ctx, user: UserPublic, csrf: str) -> SessionPublic:
    if user.area is not None:   # the board's header names the account's area
        user.area_name = ctx.history.area_names().get(user.area)
    return SessionPublic(user=user, csrf_token=csrf, idle_expiry_s=ctx.settings.session_idle_s,
                         max_expiry_s=ctx.settings.session_max_s)


class _Attempt:
    """One login attempt: who it is for, from which client."""

    def __init__(self, request: Request, ctx: Ctx, username: str) -> None:
        s = ctx.settings
        self.name = username.lower()
        self.ip = client_ip(request)
        self.device_cookie = request.cookies.get(DEVICE_COOKIE)
        self.device = security.known_device(s.secret, self.device_cookie, self.name,
                                            ctx.auth.now_ms(),
                                            int(s.known_device_days * 86_400_000))
        # Per user AND client: a known browser is its own client, so wrong passwords from
        # elsewhere (even behind the same NAT) never lock its user out there.
        self.client = self.device or f"ip:{self.ip}"
        self.key = f"uc:{self.name}|{self.client}"

    def slowdown_s(self, ctx: Ctx) -> float:
        """The delay before checking: guessing at this user from many places, or from
        this address at many names; never for the user's known browser."""
        s, throttle = ctx.settings, ctx.auth.throttle
        if self.device is not None or s.login_slowdown_s <= 0:
            return 0.0
        user = throttle.failures(f"user:{self.name}", forget_after_ms=FORGET_FAILURES_MS)
        ip = throttle.failures(f"ip:{self.ip}", forget_after_ms=FORGET_FAILURES_MS)
        slow = user >= s.login_slowdown_after or ip >= s.login_ip_max_failures
        return s.login_slowdown_s if slow else 0.0


def _login(body: LoginCreate, at: _Attempt, request: Request, response: Response,
           ctx: Ctx) -> SessionPublic:
    s, auth = ctx.settings, ctx.auth
    # Charged before the password is checked (row lock / compare-and-set), so a burst of
    # concurrent attempts checks at most `login_max_failures` passwords.
    locked = auth.throttle.begin(at.key, s.login_max_failures,
                                 lockout_ms=int(s.login_lockout_s * 1000),
                                 max_lockout_ms=int(s.login_lockout_max_s * 1000),
                                 forget_after_ms=FORGET_FAILURES_MS)
    if locked:
        raise _throttled(locked)
    found = auth.password_hash(at.name)
    ok = security.verify_password(found[1] if found else None, body.password)
    if not ok or found is None or not found[0].active:
        auth.throttle.count([f"user:{at.name}", f"ip:{at.ip}"],
                            forget_after_ms=FORGET_FAILURES_MS)
        if auth.throttle.failures(at.key, forget_after_ms=FORGET_FAILURES_MS) \
                == s.login_max_failures:
            ctx.store.audit.record("anonymous", "login_locked", body.username,
                                   {"ip": at.ip, "client": at.client,
                                    "lockout_s": s.login_lockout_s})
        raise ApiError(401, "bad_credentials", "Wrong user name or password.",
                       "Sai tên đăng nhập hoặc mật khẩu.")
    auth.throttle.cleared(at.key)
    token = security.new_session_token()
    session = auth.create_session(found[0].id, security.digest(token), ip=at.ip,
                                  user_agent=request.headers.get("user-agent"))
    secure = _secure(request, ctx)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(s.session_max_s), path="/",
                        secure=secure, httponly=True, samesite="strict")
    response.set_cookie(DEVICE_COOKIE, security.device_cookie(
        s.secret, at.device_cookie, at.name, auth.now_ms()),
        max_age=int(s.known_device_days * 86_400), path="/api/v1/session", secure=secure,
        httponly=True, samesite="strict")
    response.headers["Cache-Control"] = "no-store"
    return _public(ctx, serialize.user(session.user), security.csrf_token(s.secret, token))


@router.post("/session", response_model=SessionPublic, operation_id="session_login",
             responses={401: {}, 429: {}})
async def session_login(body: LoginCreate, request: Request, response: Response,
                        ctx: Ctx) -> SessionPublic:
    """Log in with a user name and password; sets the session cookie (and the known-device
    cookie that spares this browser the slowdowns of guessing elsewhere)."""
    at = _Attempt(request, ctx, body.username)
    delay = await run_in_threadpool(at.slowdown_s, ctx)
    if delay:
        # Awaited, not slept on a worker thread: many slowed guesses hold no threads.
        await asyncio.sleep(delay)
    return await run_in_threadpool(_login, body, at, request, response, ctx)


@router.get("/session", response_model=SessionPublic, operation_id="session_get")
def session_get(who: Viewer, ctx: Ctx) -> SessionPublic:
    """Who is logged in, and the CSRF token to send with every change."""
    if who.user is None or who.session_token is None:
        # An API token: no cookie, so no CSRF token is needed.
        return _public(ctx, UserPublic(username=who.actor, role=who.role,  # type: ignore[arg-type]
                                       display_name=None, area=who.area), "")
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
