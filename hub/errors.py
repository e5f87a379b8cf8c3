"""The hub's own exceptions; every class says in one line what went wrong."""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class SettingsError(HubError):
    """A settings file, key or environment variable that cannot be used; names file and key."""


class PolicyError(SettingsError):
    """A fan-out policy or pattern table that cannot be used; names file and key."""


class StoreError(HubError):
    """The database could not do what was asked (after retries)."""


class MigrationError(StoreError):
    """The database schema could not be brought to the current version."""


class NotFound(HubError):
    """The incident, node, command or area asked for does not exist."""


class InvalidAction(HubError):
    """An operator action that does not apply to the thing's current state."""


class Conflict(InvalidAction):
    """Someone acted first: the thing is no longer in the state the caller acted on.

    Carries what it is now (`current`), who made it so (`by`) and when (`at_ms`), so the
    loser of a race is told who did what instead of silently overwriting it (API: 409).
    """

    def __init__(self, message: str, message_vi: str, *, current: str, by: str | None,
                 at_ms: int | None, **extra: object) -> None:
        super().__init__(message)
        self.message_vi = message_vi
        self.current, self.by, self.at_ms = current, by, at_ms
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def detail(self) -> dict[str, object]:
        return {"current": self.current, "by": self.by, "at_ms": self.at_ms, **self.extra}
