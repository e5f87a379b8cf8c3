"""The sentinel's exceptions."""

from __future__ import annotations


class SentinelError(Exception):
    """Base of the sentinel's errors."""


class ConfigError(SentinelError):
    """The sentinel's config file is missing or wrong; the message names file and key."""
