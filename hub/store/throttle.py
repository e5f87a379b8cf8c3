"""Login throttling on the hub's database (shared by every replica).

Three counters, each a `login_throttle` row:

- `uc:<user>|<client>`: wrong passwords for one user from one client (an address, or a
  browser's known-device cookie). The limit locks that user out *at that client only*, for
  a lockout that doubles with each further failure. An attempt is charged before its
  password is checked (`begin`), under a row lock / compare-and-set, so a concurrent
  burst checks at most the limit of passwords; a right password clears it (`cleared`).
- `user:<user>`: wrong passwords for a user from anywhere; past a threshold logins as
  that user are slowed down (a delay, never a refusal; hub/api/routers/session.py).
- `ip:<address>`: wrong passwords from one address, any names: the same slowdown.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..db import models as m
from .base import Work

T = m.LoginThrottle


def _fresh(row: T, now: int, forget_after_ms: int) -> None:
    if now - row.last_failure_ms > forget_after_ms:
        row.failures, row.locked_until_ms = 0, None


class LoginThrottles:
    """The counters above; one transaction per call."""

    def __init__(self, work: Work) -> None:
        self._work = work

    def begin(self, key: str, allowed: int, *, lockout_ms: int, max_lockout_ms: int,
              forget_after_ms: int) -> int:
        """Charge one attempt against `key` before its password is checked. Returns the
        lockout (ms) still running (the attempt is refused, nothing charged), or 0 (go
        ahead). The attempt that reaches `allowed` starts a lockout for the ones after it;
        each later one doubles it, up to `max_lockout_ms`."""
        now = self._work.now_ms()

        def tx(s: Session) -> int:
            # FOR UPDATE: concurrent attempts on PostgreSQL queue here (SQLite has one
            # writer anyway); a row two attempts create at once is a constraint race and
            # the loser's whole transaction is retried by Work.write.
            row = s.scalars(select(T).where(T.key == key).with_for_update()).first()
            if row is None:
                row = T(key=key, failures=0, last_failure_ms=now, locked_until_ms=None)
                s.add(row)
            else:
                _fresh(row, now, forget_after_ms)
                if row.locked_until_ms is not None and row.locked_until_ms > now:
                    return row.locked_until_ms - now
            row.failures += 1
            row.last_failure_ms = now
            over = row.failures - allowed
            if over >= 0:
                row.locked_until_ms = now + min(max_lockout_ms, lockout_ms * 2 ** min(over, 30))
            s.flush()
            return 0

        return self._work.write(tx)

    def cleared(self, key: str) -> None:
        """The password was right: forget this user's failures at this client."""
        self._work.write_once(lambda s: s.execute(delete(T).where(T.key == key)))

    def count(self, keys: list[str], *, forget_after_ms: int) -> None:
        """One more failure against each of `keys` (the slowdown counters)."""
        now = self._work.now_ms()

        def tx(s: Session) -> None:
            for key in keys:
                row = s.get(T, key)
                if row is None:
                    s.add(T(key=key, failures=1, last_failure_ms=now))
                    s.flush()
                    continue
                _fresh(row, now, forget_after_ms)
                row.failures += 1
                row.last_failure_ms = now

        self._work.write(tx)

    def failures(self, key: str, *, forget_after_ms: int) -> int:
        """Recent failures counted against `key`."""
        now = self._work.now_ms()
        with self._work.read() as s:
            row = s.get(T, key)
            if row is None or now - row.last_failure_ms > forget_after_ms:
                return 0
            return int(row.failures)
