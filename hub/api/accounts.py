"""Making accounts outside the API: the first admin (`tiengmo hub create-user`) and the
demo's admin. Same rules as the API: name pattern, password length, argon2, audited."""

from __future__ import annotations

import re

from ..errors import InvalidAction
from ..store import Store
from ..store.auth import ROLES, UNSET, Unset, UserInfo
from . import security
from .schemas import USERNAME


def check_new_account(username: str, role: str, password: str) -> None:
    """Raise InvalidAction naming what is wrong with these account details."""
    if not re.fullmatch(USERNAME, username):
        raise InvalidAction(f"user name {username!r} must be 2-64 characters of a-z 0-9 . _ - "
                            "starting with a letter or digit")
    if role not in ROLES:
        raise InvalidAction(f"role {role!r} is not one of {', '.join(ROLES)}")
    problem = security.password_problem(password)
    if problem:
        raise InvalidAction(problem)


def check_area(area: str | None, known: set[str]) -> str | None:
    """The account's area (None or "" = the whole hub), or InvalidAction naming the problem."""
    if area is None or area.strip() in ("", "/"):
        return None
    path = area.strip().strip("/")
    if path not in known:
        hint = "" if known else " (no areas are known yet: give --registry FILE)"
        raise InvalidAction(f"area {path!r} is not an area of the registry{hint}")
    return path


def create_user(store: Store, username: str, role: str, password: str, *, actor: str,
                display_name: str | None = None, update: bool = False,
                area: str | Unset | None = UNSET) -> UserInfo:
    """Create the user (limited to the area subtree `area`, if given, already checked);
    with `update`, an existing one gets this role and password, and this area if given
    (its sessions end)."""
    check_new_account(username, role, password)
    auth = store.auth
    digest = security.hash_password(password)
    if update and auth.user(username) is not None:
        return auth.update_user(username, actor, role=role, password_hash=digest,
                                display_name=display_name, active=True, area=area)
    return auth.create_user(username, digest, role, actor, display_name=display_name,
                            area=None if isinstance(area, Unset) else area)
