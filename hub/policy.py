"""Fan-out policy: which area sounds, with which pattern, for how long, how urgently.

Per alarm kind the policy names a level relative to the origin node's own area
(its hamlet): "hamlet" is that area, "commune" its parent, "district" its
grandparent (clamped at the top, since a node may sit at any depth). Each
commune agrees its own signals ("quy ước", DOMAIN.md), so a pattern table can be
overridden per area: an override applies to that area and every area below it,
the most specific one winning; otherwise protocol.patterns' defaults apply.

Loaded from the hub settings' `[policy]` table:

    [policy.kinds.fire]
    level = "commune"          # hamlet | commune | district
    pattern = "fire"           # a pattern name (default: the kind itself)
    duration_s = 180
    priority = 5

    [[policy.patterns]]
    area = "bach-thong/vi-huong"
    name = "fire"
    steps = [[120, 180]]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import protocol
from protocol import Kind, Pattern
from protocol.patterns import DEFAULT_ALARM_DURATION_S, DEFAULT_DRILL_DURATION_S

from .errors import PolicyError

# Levels are named for Vietnam's usual hierarchy but mean "steps up from the
# origin's own area", so deployments with other levels still work.
LEVELS: dict[str, int] = {"hamlet": 0, "commune": 1, "district": 2}

ALL_CLEAR = "all_clear"
DRILL = "drill"
WARNING = "warning"


class Sound(NamedTuple):
    """One fan-out decision: sound `pattern` in `area` for `duration_s` at `priority`."""

    area: str
    pattern: Pattern
    duration_s: int
    priority: int


@dataclass(frozen=True, slots=True)
class KindPolicy:
    level: str = "hamlet"
    pattern: str | None = None        # None: the pattern named like the kind
    duration_s: int = DEFAULT_ALARM_DURATION_S
    priority: int = protocol.PRIORITY_ALARM


@dataclass(frozen=True, slots=True)
class PatternOverride:
    area: str
    pattern: Pattern


@dataclass(frozen=True, slots=True)
class Policy:
    """Frozen fan-out policy; build with `parse_policy` (or `Policy()` for the defaults)."""

    kinds: Mapping[str, KindPolicy] = field(default_factory=dict)
    overrides: tuple[PatternOverride, ...] = ()
    drill_duration_s: int = DEFAULT_DRILL_DURATION_S
    all_clear_duration_s: int = 30
    warning_duration_s: int = 60
    max_escalation: int = 2           # widen at most this many levels above the first sound

    def kind_policy(self, kind: str) -> KindPolicy:
        return self.kinds.get(str(kind), KindPolicy())

    def pattern_for(self, name: str, area: str | None) -> Pattern:
        """The pattern `name` as agreed for `area` (most specific override wins)."""
        best: PatternOverride | None = None
        if area is not None:
            for ov in self.overrides:
                if ov.pattern.name == name and protocol.area_contains(ov.area, area) and (
                        best is None or len(ov.area) > len(best.area)):
                    best = ov
        if best is not None:
            return best.pattern
        try:
            return protocol.default_pattern(name)
        except KeyError:
            raise PolicyError(f"no pattern named {name!r}") from None

    def sound_for(self, kind: str, origin_area: str) -> Sound:
        """Where and how an incident of `kind` from `origin_area` (its hamlet) sounds."""
        kp = self.kind_policy(kind)
        target = up(origin_area, LEVELS[kp.level])
        try:
            pattern = self.pattern_for(kp.pattern or str(kind), target)
        except PolicyError:
            # A custom pattern agreed only in some communes: elsewhere the kind's own
            # default still sounds; an alarm never fails for want of a pattern.
            pattern = protocol.default_pattern(str(kind))
        return Sound(target, pattern, kp.duration_s, kp.priority)

    def widen(self, area: str) -> str | None:
        """One area level wider (escalation), or None at the top."""
        return protocol.area_parent(area)

    def drill(self, area: str, duration_s: int | None = None) -> Sound:
        return Sound(area, self.pattern_for(DRILL, area), duration_s or self.drill_duration_s,
                     protocol.PRIORITY_DRILL)

    def all_clear(self, area: str, duration_s: int | None = None) -> Sound:
        return Sound(area, self.pattern_for(ALL_CLEAR, area),
                     duration_s or self.all_clear_duration_s, protocol.PRIORITY_WARNING)

    def warning(self, area: str, signal: str, duration_s: int | None = None) -> Sound:
        """An operator's broadcast: `signal` is a kind or a pattern name."""
        return Sound(area, self.pattern_for(signal, area), duration_s or self.warning_duration_s,
                     protocol.PRIORITY_WARNING)


def up(area: str, steps: int) -> str:
    """`area` widened `steps` levels, stopping at the top-level area."""
    for _ in range(steps):
        parent = protocol.area_parent(area)
        if parent is None:
            break
        area = parent
    return area


# --- parsing ------------------------------------------------------------------------------------

_TOP_KEYS = {"kinds", "patterns", "drill_duration_s", "all_clear_duration_s",
             "warning_duration_s", "max_escalation"}
_KIND_KEYS = {"level", "pattern", "duration_s", "priority"}
_PATTERN_KEYS = {"area", "name", "steps"}


def _int(where: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise PolicyError(f"{where} must be an integer in {lo}..{hi}, got {value!r}")
    return value


def _unknown(where: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise PolicyError(f"{where}.{extra[0]}: unknown key")


def parse_policy(data: Mapping[str, Any] | None, source: str = "<memory>") -> Policy:
    """Validate a `[policy]` table; every error names `source` and the dotted key."""
    if data is None:
        return Policy()
    where = f"{source}: policy"
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where} must be a table")
    _unknown(where, data, _TOP_KEYS)
    kinds_raw = data.get("kinds", {})
    if not isinstance(kinds_raw, Mapping):
        raise PolicyError(f"{where}.kinds must be a table")
    names = {k.value for k in Kind}
    kinds: dict[str, KindPolicy] = {}
    for kind, raw in kinds_raw.items():
        kw = f"{where}.kinds.{kind}"
        if kind not in names:
            raise PolicyError(f"{kw}: unknown alarm kind (one of {', '.join(sorted(names))})")
        if not isinstance(raw, Mapping):
            raise PolicyError(f"{kw} must be a table")
        _unknown(kw, raw, _KIND_KEYS)
        level = raw.get("level", "hamlet")
        if level not in LEVELS:
            raise PolicyError(f"{kw}.level must be one of {', '.join(LEVELS)}, got {level!r}")
        pattern = raw.get("pattern")
        if pattern is not None and not isinstance(pattern, str):
            raise PolicyError(f"{kw}.pattern must be a pattern name")
        kinds[kind] = KindPolicy(
            level=level, pattern=pattern,
            duration_s=_int(f"{kw}.duration_s", raw.get("duration_s", DEFAULT_ALARM_DURATION_S),
                            1, protocol.messages.MAX_SOUND_S),
            priority=_int(f"{kw}.priority", raw.get("priority", protocol.PRIORITY_ALARM),
                          0, protocol.messages.MAX_PRIORITY),
        )
    overrides: list[PatternOverride] = []
    pats = data.get("patterns", [])
    if not isinstance(pats, list):
        raise PolicyError(f"{where}.patterns must be an array of tables ([[policy.patterns]])")
    for i, raw in enumerate(pats):
        pw = f"{where}.patterns[{i}]"
        if not isinstance(raw, Mapping):
            raise PolicyError(f"{pw} must be a table")
        _unknown(pw, raw, _PATTERN_KEYS)
        for key in ("area", "name", "steps"):
            if key not in raw:
                raise PolicyError(f"{pw}.{key} is required")
        if not protocol.is_area_path(raw["area"]):
            raise PolicyError(f"{pw}.area = {raw['area']!r} is not an area path")
        try:
            pat = Pattern(raw["name"], raw["steps"])
        except protocol.PayloadError as exc:
            raise PolicyError(f"{pw}: {exc}") from None
        if any(o.area == raw["area"] and o.pattern.name == pat.name for o in overrides):
            raise PolicyError(f"{pw}: pattern {pat.name!r} for {raw['area']!r} is listed twice")
        overrides.append(PatternOverride(raw["area"], pat))
    policy = Policy(
        kinds=kinds, overrides=tuple(overrides),
        drill_duration_s=_int(f"{where}.drill_duration_s",
                              data.get("drill_duration_s", DEFAULT_DRILL_DURATION_S), 1,
                              protocol.messages.MAX_SOUND_S),
        all_clear_duration_s=_int(f"{where}.all_clear_duration_s",
                                  data.get("all_clear_duration_s", 30), 1,
                                  protocol.messages.MAX_SOUND_S),
        warning_duration_s=_int(f"{where}.warning_duration_s",
                                data.get("warning_duration_s", 60), 1,
                                protocol.messages.MAX_SOUND_S),
        max_escalation=_int(f"{where}.max_escalation", data.get("max_escalation", 2), 0, 4),
    )
    # Every kind's pattern must resolve now, not at 2 a.m. during a fire.
    for kind, kp in policy.kinds.items():
        name = kp.pattern or kind
        if name not in protocol.DEFAULT_PATTERNS and not any(
                o.pattern.name == name for o in policy.overrides):
            raise PolicyError(f"{where}.kinds.{kind}.pattern: no pattern named {name!r}")
    return policy
