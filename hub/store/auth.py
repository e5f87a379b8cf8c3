"""Operators' accounts: users, browser sessions, API tokens and login throttling.

`store.auth` (an `AuthStore` on the store's unit of work) shares the hub store's
engine, writer gate and clock. It never sees a
password or a token: callers hand it argon2 hashes and SHA-256 digests
(hub.api.security). Every change is audited in the same transaction as the
change itself, so the audit log cannot miss one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..db import models as m
from ..errors import Conflict, InvalidAction, NotFound
from .base import Work
from .throttle import LoginThrottles

ROLES = ("viewer", "operator", "admin")


class Unset:
    """The value of an argument not given (where None means something)."""


UNSET = Unset()
# Writing last_seen on every request would make every page view a write; a session's
# idle expiry does not need better than this.
TOUCH_EVERY_MS = 15_000


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    username: str
    display_name: str | None
    role: str
    active: bool
    created_ms: int
    updated_ms: int
    last_login_ms: int | None
    area: str | None = None         # limited to this area subtree (None: the whole hub)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: int
    user: UserInfo
    created_ms: int
    last_seen_ms: int


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    role: str
    prefix: str
    created_ms: int
    created_by: str
    last_used_ms: int | None
    revoked_ms: int | None
    area: str | None = None         # as UserInfo.area


def _user(row: m.User) -> UserInfo:
    return UserInfo(row.id, row.username, row.display_name, row.role, bool(row.active),
                    row.created_ms, row.updated_ms, row.last_login_ms, row.area)


def _token(row: m.ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.role, row.prefix, row.created_ms, row.created_by,
                     row.last_used_ms, row.revoked_ms, row.area)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidAction(f"role {role!r} is not one of {', '.join(ROLES)}")


class AuthStore:
    """Accounts on the hub's database (one transaction per call)."""

    def __init__(self, work: Work) -> None:
        self._work = work
        self.throttle = LoginThrottles(work)

    def now_ms(self) -> int:
        return self._work.now_ms()

    def _audit(self, s: Session, actor: str, action: str, subject: str | None,
               **detail: Any) -> None:
        s.add(m.AuditRow(ts_ms=self.now_ms(), actor=actor, action=action, subject=subject,
                         detail={k: v for k, v in detail.items() if v is not None}))

    # --- users ---------------------------------------------------------------------------------

    def create_user(self, username: str, password_hash: str, role: str, actor: str, *,
                    display_name: str | None = None, area: str | None = None) -> UserInfo:
        _check_role(role)
        now = self.now_ms()

        def tx(s: Session) -> UserInfo:
            if s.scalars(select(m.User).where(m.User.username == username)).first():
                raise InvalidAction(f"user {username!r} already exists")
            row = m.User(username=username, display_name=display_name, role=role,
                         password_hash=password_hash, active=True, created_ms=now,
                         updated_ms=now, area=area)
            s.add(row)
            s.flush()
            self._audit(s, actor, "create_user", username, role=role, area=area)
            return _user(row)

        return self._work.write_once(tx)

    def user(self, username: str) -> UserInfo | None:
        with self._work.read() as s:
            row = s.scalars(select(m.User).where(m.User.username == username)).first()
            return _user(row) if row else None

    def password_hash(self, username: str) -> tuple[UserInfo, str] | None:
        with self._work.read() as s:
            row = s.scalars(select(m.User).where(m.User.username == username)).first()
            return (_user(row), row.password_hash) if row else None

    def users(self) -> list[UserInfo]:
        with self._work.read() as s:
            return [_user(r) for r in s.scalars(select(m.User).order_by(m.User.username))]

    def count_users(self) -> int:
        with self._work.read() as s:
            return int(s.scalar(select(func.count()).select_from(m.User)) or 0)

    @staticmethod
    def _get_user(s: Session, username: str) -> m.User:
        row = s.scalars(select(m.User).where(m.User.username == username)).first()
        if row is None:
            raise NotFound(f"user {username!r} does not exist")
        return row

    @staticmethod
    def _other_admins(s: Session, username: str) -> int:
        # Only an admin without an area can manage accounts (hub/api/scope.py): one must stay.
        return int(s.scalar(select(func.count()).select_from(m.User).where(
            m.User.role == "admin", m.User.active.is_(True), m.User.area.is_(None),
            m.User.username != username)) or 0)

    def update_user(self, username: str, actor: str, *, role: str | None = None,
                    display_name: str | None = None, password_hash: str | None = None,
                    active: bool | None = None, area: str | Unset | None = UNSET,
                    expected_role: str | None = None,
                    expected_active: bool | None = None) -> UserInfo:
        """Change what is given; `area` None makes the user hub-wide (UNSET: unchanged).
        `expected_*`: what the admin saw; another value (someone changed it first) is a
        Conflict saying who and when, and nothing is changed."""
        if role is not None:
            _check_role(role)

        def tx(s: Session) -> UserInfo:
            row = self._get_user(s, username)
            for field, seen, wanted, now in (("role", expected_role, role, row.role),
                                             ("active", expected_active, active, row.active)):
                # Already as asked (a retry, or the same change twice): nothing to refuse.
                if seen is not None and seen != now and wanted != now:
                    raise self._stale(s, username, field, seen, now)
            demoted = ((role is not None and role != "admin") or active is False
                       or (not isinstance(area, Unset) and area is not None))
            if row.role == "admin" and row.area is None and demoted \
                    and not self._other_admins(s, username):
                raise InvalidAction("the last active admin without an area cannot be demoted, "
                                    "disabled or limited to an area")
            changed: dict[str, Any] = {}
            if role is not None and role != row.role:
                changed["role"], row.role = role, role
            if display_name is not None and display_name != row.display_name:
                changed["display_name"], row.display_name = display_name, display_name
            if active is not None and active != row.active:
                changed["active"], row.active = active, active
            if not isinstance(area, Unset) and area != row.area:
                changed["area"], row.area = area or "(all)", area
            if password_hash is not None:
                row.password_hash = password_hash
                changed["password"] = "changed"
            if changed:
                row.updated_ms = self.now_ms()
                if changed.keys() & {"role", "password", "area"} or active is False:
                    # New rights or a new password: sessions opened before must log in again.
                    s.execute(delete(m.WebSession).where(m.WebSession.user_id == row.id))
                self._audit(s, actor, "update_user", username, **changed)
            return _user(row)

        return self._work.write_once(tx)

    @staticmethod
    def _stale(s: Session, username: str, field: str, expected: object,
               current: object) -> Conflict:
        """Another admin changed `field` first: who and when, from the audit log."""
        last = s.scalars(select(m.AuditRow).where(
            m.AuditRow.subject == username,
            m.AuditRow.action.in_(("create_user", "update_user"))).order_by(
                m.AuditRow.id.desc())).first()
        by, at = (last.actor, last.ts_ms) if last is not None else (None, None)
        who, who_vi = (f" by {by}", f" bởi {by}") if by else ("", "")
        return Conflict(
            f"user {username}: {field} is now {current!r}{who}, not {expected!r} as "
            "expected; nothing was changed",
            f"Người dùng {username}: {field} hiện là {current!r}{who_vi}, không phải "
            f"{expected!r} như đã thấy; không có gì bị thay đổi.",
            current=str(current).lower(), by=by, at_ms=at, field=field, username=username)

    def delete_user(self, username: str, actor: str) -> None:
        def tx(s: Session) -> None:
            row = self._get_user(s, username)
            if row.role == "admin" and row.area is None and not self._other_admins(s, username):
                raise InvalidAction("the last active admin without an area cannot be deleted")
            s.execute(delete(m.WebSession).where(m.WebSession.user_id == row.id))
            s.delete(row)
            self._audit(s, actor, "delete_user", username)

        self._work.write_once(tx)

    # --- sessions ------------------------------------------------------------------------------

    def create_session(self, user_id: int, token_hash: str, *, ip: str | None,
                       user_agent: str | None) -> SessionInfo:
        now = self.now_ms()

        def tx(s: Session) -> SessionInfo:
            user = s.get(m.User, user_id)
            if user is None:
                raise NotFound(f"user {user_id} does not exist")
            user.last_login_ms = now
            row = m.WebSession(token_hash=token_hash, user_id=user_id, created_ms=now,
                               last_seen_ms=now, ip=ip, user_agent=(user_agent or "")[:200])
            s.add(row)
            s.flush()
            self._audit(s, user.username, "login", user.username, ip=ip)
            return SessionInfo(row.id, _user(user), now, now)

        return self._work.write_once(tx)

    def session(self, token_hash: str, *, idle_ms: int, max_ms: int) -> SessionInfo | None:
        """The live session with this digest (touched), or None; expired ones are removed."""
        now = self.now_ms()
        with self._work.read() as s:
            row = s.scalars(select(m.WebSession).where(
                m.WebSession.token_hash == token_hash)).first()
            user = s.get(m.User, row.user_id) if row else None
            if row is None or user is None:
                return None
            created, seen = row.created_ms, row.last_seen_ms
            info = SessionInfo(row.id, _user(user), created, seen)
        if not info.user.active or now - seen > idle_ms or now - created > max_ms:
            self._work.write_once(lambda s: s.execute(
                delete(m.WebSession).where(m.WebSession.token_hash == token_hash)))
            return None
        if now - seen >= TOUCH_EVERY_MS:
            def touch(s: Session) -> None:
                row = s.scalars(select(m.WebSession).where(
                    m.WebSession.token_hash == token_hash)).first()
                if row is not None:
                    row.last_seen_ms = now
            self._work.write_once(touch)
        return info

    def delete_session(self, token_hash: str, actor: str) -> bool:
        def tx(s: Session) -> bool:
            done = s.execute(delete(m.WebSession).where(m.WebSession.token_hash == token_hash))
            if done.rowcount:  # type: ignore[attr-defined]
                self._audit(s, actor, "logout", actor)
            return bool(done.rowcount)  # type: ignore[attr-defined]

        return self._work.write_once(tx)

    # --- API tokens ----------------------------------------------------------------------------

    def create_token(self, name: str, role: str, token_hash: str, prefix: str,
                     actor: str, *, area: str | None = None) -> TokenInfo:
        _check_role(role)
        now = self.now_ms()

        def tx(s: Session) -> TokenInfo:
            row = m.ApiToken(name=name, role=role, token_hash=token_hash, prefix=prefix,
                             created_ms=now, created_by=actor, area=area)
            s.add(row)
            s.flush()
            self._audit(s, actor, "create_token", f"token:{name}", role=role, id=row.id,
                        area=area)
            return _token(row)

        return self._work.write_once(tx)

    def token(self, token_hash: str) -> TokenInfo | None:
        """The unrevoked token with this digest (last use noted), or None."""
        now = self.now_ms()
        with self._work.read() as s:
            row = s.scalars(select(m.ApiToken).where(m.ApiToken.token_hash == token_hash,
                                                     m.ApiToken.revoked_ms.is_(None))).first()
            if row is None:
                return None
            info = _token(row)
        if info.last_used_ms is None or now - info.last_used_ms >= TOUCH_EVERY_MS:
            def touch(s: Session) -> None:
                row = s.get(m.ApiToken, info.id)
                if row is not None:
                    row.last_used_ms = now
            self._work.write_once(touch)
        return info

    def tokens(self) -> list[TokenInfo]:
        with self._work.read() as s:
            return [_token(r) for r in s.scalars(select(m.ApiToken).order_by(m.ApiToken.id))]

    def revoke_token(self, token_id: int, actor: str) -> TokenInfo:
        now = self.now_ms()

        def tx(s: Session) -> TokenInfo:
            row = s.get(m.ApiToken, token_id)
            if row is None:
                raise NotFound(f"token {token_id} does not exist")
            if row.revoked_ms is None:
                row.revoked_ms = now
                self._audit(s, actor, "revoke_token", f"token:{row.name}", id=row.id)
            return _token(row)

        return self._work.write_once(tx)
