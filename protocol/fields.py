"""Field validators shared by every payload type.

Each validator takes the raw value (from JSON or from a constructor) and
returns the normalised value or raises PayloadError naming the field. One
place for these rules keeps the decoder and the constructors in agreement.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from .errors import PayloadError
from .ids import is_area_path, is_node_id, is_uuid

# JSON numbers above 2**53 lose precision in most decoders; no field needs more.
MAX_SAFE_INT = 2**53 - 1

Validator = Callable[[str, Any], Any]
E = TypeVar("E", bound=StrEnum)


def _type_error(name: str, want: str, value: Any) -> PayloadError:
    return PayloadError(
        "wrong_type", f"field {name!r} must be {want}, not {type(value).__name__}", field=name
    )


def integer(lo: int = 0, hi: int = MAX_SAFE_INT) -> Validator:
    """An integer (never a bool or a float) in [lo, hi]."""

    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(name, "an integer", value)
        if not lo <= value <= hi:
            raise PayloadError(
                "out_of_range", f"field {name!r} must be in {lo}..{hi}, got {value}", field=name
            )
        return value

    return check


def number(lo: float, hi: float) -> Validator:
    """An integer or finite float in [lo, hi]."""

    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(name, "a number", value)
        if isinstance(value, float) and not math.isfinite(value):
            raise PayloadError("out_of_range", f"field {name!r} must be finite", field=name)
        if not lo <= value <= hi:
            raise PayloadError(
                "out_of_range", f"field {name!r} must be in {lo}..{hi}, got {value}", field=name
            )
        return value

    return check


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _type_error(name, "true or false", value)
    return value


def text(lo: int = 1, hi: int = 200) -> Validator:
    """A string of lo..hi characters."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise _type_error(name, "a string", value)
        if not lo <= len(value) <= hi:
            raise PayloadError(
                "out_of_range", f"field {name!r} must be {lo}..{hi} characters long", field=name
            )
        return value

    return check


def enum(cls: type[E], reason: str = "bad_value") -> Validator:
    """One of the enum's string values; `reason` lets `kind` count apart."""

    def check(name: str, value: Any) -> E:
        if not isinstance(value, str):
            raise _type_error(name, "a string", value)
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise PayloadError(
                reason, f"field {name!r} is {value[:40]!r}, expected one of: {allowed}", field=name
            ) from None

    return check


def uuid_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _type_error(name, "a UUID string", value)
    if not is_uuid(value):
        raise PayloadError("bad_value", f"field {name!r} is not a UUID", field=name)
    return value.lower()


def node_id(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _type_error(name, "a string", value)
    if not is_node_id(value):
        raise PayloadError(
            "bad_value", f"field {name!r} must match ^[a-z0-9][a-z0-9-]{{0,62}}$", field=name
        )
    return value


def area_path(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _type_error(name, "a string", value)
    if not is_area_path(value):
        raise PayloadError(
            "bad_value", f"field {name!r} must be 1 to 4 slugs [a-z0-9-]+ joined by '/'", field=name
        )
    return value
