"""Phone numbers as the registry and the hub's modem compare them: E.164.

A household writes its number as people in Vietnam say it ("0912 345 678",
"091.234.5678"); the modem reports a caller as "+84912345678" or "84912345678".
Both must find the same household, so every number is normalised here, once, to
"+84912345678" (Vietnam's country code 84 without the trunk 0). Stdlib only: the
registry parser, the hub and the simulator panel share it.
"""

from __future__ import annotations

import re

COUNTRY = "84"
_SEPARATORS = re.compile(r"[\s.\-()/]")


def normalise_phone(raw: str, country: str = COUNTRY) -> str:
    """`raw` as E.164 ("+84912345678"); ValueError if it is not a phone number."""
    digits = _SEPARATORS.sub("", raw)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("+"):
        body = digits[1:]
    elif digits.startswith("0"):
        body = country + digits[1:]            # national: the trunk 0 becomes +84
    elif digits.startswith(country) and len(digits) >= len(country) + 9:
        body = digits                          # "84912345678": international without "+"
    else:
        raise ValueError(f"{raw!r} is not a phone number (write it as 09xx… or +849xx…)")
    if not body.isdigit() or not 8 <= len(body) <= 15:
        raise ValueError(f"{raw!r} is not a phone number (write it as 09xx… or +849xx…)")
    return "+" + body
