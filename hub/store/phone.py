"""An alarm that reached the hub by phone (an SMS keyword, a confirmed missed call),
through its own modem, never over MQTT: the wire's alarm message is unchanged.

It goes through the same alarm transaction as a button's (hub/alarm_batch.py) with a
pseudo origin `tel:<E.164 number>` that can never be a node id, and it carries its
household's hamlet: the batch treats that origin as a known, enabled node of that
hamlet (no node row is made for it). Stored with source `sms` or `call`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocol import Kind

ORIGIN_PREFIX = "tel:"


class PhoneSource(StrEnum):
    SMS = "sms"
    CALL = "call"


@dataclass(frozen=True, slots=True)
class PhoneAlarm:
    alarm_id: str
    kind: Kind
    ts_ms: int
    source: PhoneSource
    area: str                    # the household's hamlet
    attempt: int = 1
    button: int | None = None


def phone_origin(number: str) -> str:
    return ORIGIN_PREFIX + number


def origin_number(origin: str | None) -> str | None:
    """The number of a `tel:` origin, else None."""
    if origin is not None and origin.startswith(ORIGIN_PREFIX):
        return origin[len(ORIGIN_PREFIX):]
    return None
