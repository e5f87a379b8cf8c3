"""Making accounts outside the API: the first admin (`tiengmo hub create-user`) and the
demo's admin. Same rules as the API: name pattern, password length, argon2, audited."""

from __future__ import annotations

import re

from ..errors import InvalidAction
from ..store import Store
from ..store.auth import ROLES, UserInfo
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


def create_user(store: Store, username: str, role: str, password: str, *, actor: str,
                display_name: str | None = None, update: bool = False) -> UserInfo:
    """Create the user; with `update`, an existing one gets this role and password (its
    sessions end)."""
    check_new_account(username, role, password)
    auth = store.auth
    digest = security.hash_password(password)
    if update and auth.user(username) is not None:
        return auth.update_user(username, actor, role=role, password_hash=digest,
                                display_name=display_name, active=True)
    return auth.create_user(username, digest, role, actor, display_name=display_name)
