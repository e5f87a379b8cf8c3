"""What the status LED shows, decided from the agent's state (one pure function)."""

from __future__ import annotations

from protocol import AckStatus

from .led import LedState
from .outbox import Entry, EntryState


def led_state(*, fault: bool, hub_available: bool, latest: Entry | None) -> LedState:
    """Fault first (it needs a technician), then "no hub" (rule 1: the LED says
    so), then the progress of the node's latest open alarm, else idle."""
    if fault:
        return LedState.FAULT
    if not hub_available:
        return LedState.NO_HUB
    if latest is None:
        return LedState.IDLE
    if latest.state is EntryState.PENDING:
        return LedState.SENDING
    if latest.progress == AckStatus.ACKNOWLEDGED.value:
        return LedState.ACKNOWLEDGED
    return LedState.RECEIVED
