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
