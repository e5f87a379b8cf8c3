"""The default signals, shared by node (local sound) and hub (fan-out).

They follow the village custom (DOMAIN.md): rapid continuous strikes
("liên hồi") for fire, rounds of three quick strikes for theft, long blasts
for flood, a short distinct pattern for drills. A hamlet's own "quy ước"
overrides them per area on the hub and per node in the node's config.
"""

from __future__ import annotations

from .messages import Kind, Pattern

# Priorities of PROTOCOL.md: alarm incident 5, broadcast warning 3, drill/test 1.
PRIORITY_ALARM = 5
PRIORITY_WARNING = 3
PRIORITY_DRILL = 1

_Q = 120  # one quick strike, ms

DEFAULT_PATTERNS: dict[str, Pattern] = {
    # liên hồi: continuous rapid strikes
    Kind.FIRE.value: Pattern("fire", ((_Q, 180),)),
    # rounds of three quick strikes (Ea Ô, Đắk Lắk)
    Kind.THEFT.value: Pattern("theft", ((_Q, 150), (_Q, 150), (_Q, 1200))),
    # two strikes repeated continuously (Đăk Nông, Kon Tum)
    Kind.ROBBERY.value: Pattern("robbery", ((_Q, 150), (_Q, 800))),
    Kind.FIGHT.value: Pattern("fight", ((_Q, 150), (_Q, 150), (_Q, 150), (_Q, 1200))),
    # long blasts (Huế's flood sirens: 10 s blasts); a gong rolls through them
    Kind.FLOOD.value: Pattern("flood", ((10_000, 5_000),)),
    Kind.MEDICAL.value: Pattern("medical", ((600, 300), (_Q, 150), (_Q, 1500))),
    Kind.SOS.value: Pattern("sos", ((_Q, 120),)),
    # slow single strikes: clearly not an alarm
    "drill": Pattern("drill", ((300, 1700),)),
    # one long, then quiet: the all-clear (never "báo yên", which means curfew)
    "all_clear": Pattern("all_clear", ((1500, 1500), (1500, 4000))),
    "warning": Pattern("warning", ((2000, 2000),)),
}

DEFAULT_ALARM_DURATION_S = 120
DEFAULT_DRILL_DURATION_S = 10


def default_pattern(name: str) -> Pattern:
    """The default pattern for an alarm kind or a named signal (drill, all_clear...)."""
    return DEFAULT_PATTERNS[name]
