"""The node agent's own exceptions."""

from __future__ import annotations


class NodeError(Exception):
    """Base of every error the node agent raises on purpose."""


class ConfigError(NodeError):
    """A node config file that cannot be used; the message names file, key and problem."""

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


class HardwareCheckError(NodeError):
    """Hardware settings the agent refuses to drive (unsafe pin, pin used twice...)."""


class OutboxError(NodeError):
    """The durable outbox cannot be opened or written."""
