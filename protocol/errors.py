"""The protocol's own exceptions: the only ones `protocol` ever raises on bad input."""

from __future__ import annotations


class ProtocolError(ValueError):
    """A topic or payload that does not follow PROTOCOL.md.

    `reason` is a short machine-readable code (for counting rejections by
    reason); the message says which field and why, for the log.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        field: str | None = None,
        alarm_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field
        # Set when the payload was an alarm whose alarm_id could be read, so a
        # hub can answer a well-formed alarm it will never accept with an ack
        # `rejected` instead of leaving the node re-sending it forever.
        self.alarm_id = alarm_id


class PayloadError(ProtocolError):
    """A payload that is not valid JSON of the right shape, type or range."""


class TopicError(ProtocolError):
    """A topic that is not one of the protocol's topics."""
