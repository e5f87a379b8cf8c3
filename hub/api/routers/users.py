"""Users (admin only): viewer, operator, admin; passwords stored as argon2 hashes."""

from __future__ import annotations

from fastapi import APIRouter, Response

from .. import security, serialize
from ..deps import Admin, Ctx
from ..errors import ApiError, not_found
from ..schemas import UserCreate, UserPublic, UserUpdate

router = APIRouter(tags=["users"])


def _check_password(password: str) -> None:
    problem = security.password_problem(password)
    if problem:
        raise ApiError(422, "weak_password", problem.capitalize() + ".",
                       f"Mật khẩu phải có từ {security.MIN_PASSWORD} ký tự trở lên.")


@router.get("/users", response_model=list[UserPublic], operation_id="users_list")
def users_list(_who: Admin, ctx: Ctx) -> list[UserPublic]:
    return [serialize.user(u) for u in ctx.auth.users()]


@router.post("/users", response_model=UserPublic, status_code=201, operation_id="users_create",
             responses={409: {}})
def users_create(body: UserCreate, who: Admin, ctx: Ctx) -> UserPublic:
    _check_password(body.password)
    user = ctx.auth.create_user(body.username, security.hash_password(body.password), body.role,
                                who.actor, display_name=body.display_name or None)
    return serialize.user(user)


@router.get("/users/{username}", response_model=UserPublic, operation_id="users_get",
            responses={404: {}})
def users_get(username: str, _who: Admin, ctx: Ctx) -> UserPublic:
    user = ctx.auth.user(username)
    if user is None:
        raise not_found(f"user {username!r}", f"người dùng {username!r}")
    return serialize.user(user)


@router.patch("/users/{username}", response_model=UserPublic, operation_id="users_update",
              responses={404: {}, 409: {}})
def users_update(username: str, body: UserUpdate, who: Admin, ctx: Ctx) -> UserPublic:
    """Change a user's role, name, password or whether they may log in; a new role or
    password ends the user's sessions."""
    if body.password is not None:
        _check_password(body.password)
    digest = security.hash_password(body.password) if body.password is not None else None
    user = ctx.auth.update_user(username, who.actor, role=body.role,
                                display_name=body.display_name, password_hash=digest,
                                active=body.active)
    return serialize.user(user)


@router.delete("/users/{username}", status_code=204, operation_id="users_delete",
               responses={404: {}, 409: {}})
def users_delete(username: str, who: Admin, ctx: Ctx) -> Response:
    """Delete a user and end their sessions (their past actions stay in the audit log)."""
    ctx.auth.delete_user(username, who.actor)
    return Response(status_code=204)
