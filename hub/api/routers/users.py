"""Users (an admin without an area only): viewer, operator, admin, each hub-wide or
limited to an area subtree; passwords stored as argon2 hashes."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ...store.auth import UNSET
from .. import security, serialize
from ..deps import Ctx, HubAdmin
from ..errors import ApiError, not_found
from ..schemas import UserCreate, UserPublic, UserUpdate
from ..scope import account_area

router = APIRouter(tags=["users"])


def _check_password(password: str) -> None:
    problem = security.password_problem(password)
    if problem:
        raise ApiError(422, "weak_password", problem.capitalize() + ".",
                       f"Mật khẩu phải có từ {security.MIN_PASSWORD} ký tự trở lên.")


@router.get("/users", response_model=list[UserPublic], operation_id="users_list")
def users_list(_who: HubAdmin, ctx: Ctx) -> list[UserPublic]:
    return [serialize.user(u) for u in ctx.auth.users()]


@router.post("/users", response_model=UserPublic, status_code=201, operation_id="users_create",
             responses={409: {}})
def users_create(body: UserCreate, who: HubAdmin, ctx: Ctx) -> UserPublic:
    _check_password(body.password)
    area = account_area(ctx, body.area)
    user = ctx.auth.create_user(body.username, security.hash_password(body.password), body.role,
                                who.actor, display_name=body.display_name or None, area=area)
    return serialize.user(user)


@router.get("/users/{username}", response_model=UserPublic, operation_id="users_get",
            responses={404: {}})
def users_get(username: str, _who: HubAdmin, ctx: Ctx) -> UserPublic:
    user = ctx.auth.user(username)
    if user is None:
        raise not_found(f"user {username!r}", f"người dùng {username!r}")
    return serialize.user(user)


@router.patch("/users/{username}", response_model=UserPublic, operation_id="users_update",
              responses={404: {}, 409: {}})
def users_update(username: str, body: UserUpdate, who: HubAdmin, ctx: Ctx) -> UserPublic:
    """Change a user's role, name, password, area or whether they may log in; a new role,
    area or password ends the user's sessions."""
    if body.password is not None:
        _check_password(body.password)
    area = account_area(ctx, body.area) if "area" in body.model_fields_set else UNSET
    digest = security.hash_password(body.password) if body.password is not None else None
    user = ctx.auth.update_user(username, who.actor, role=body.role,
                                display_name=body.display_name, password_hash=digest,
                                active=body.active, area=area,
                                expected_role=body.expected_role,
                                expected_active=body.expected_active)
    return serialize.user(user)


@router.delete("/users/{username}", status_code=204, operation_id="users_delete",
               responses={404: {}, 409: {}})
def users_delete(username: str, who: HubAdmin, ctx: Ctx) -> Response:
    """Delete a user and end their sessions (their past actions stay in the audit log)."""
    ctx.auth.delete_user(username, who.actor)
    return Response(status_code=204)
