"""The node's status LED (stub, being implemented)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class LedState(StrEnum):
    IDLE = "idle"
    SENDING = "sending"
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    NO_HUB = "no_hub"
    FAULT = "fault"


class StatusLed:
    def __init__(self, pin: int | None, active_high: bool = True, pin_factory: Any = None) -> None:
        self.state = LedState.IDLE

    def show(self, state: LedState) -> None:
        self.state = state

    def close(self) -> None:
        pass
