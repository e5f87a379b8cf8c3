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
    max_level = "district"     # the widest escalation may sound (default: see below)
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
from protocol.tomltable import Table, TableError

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


# By default escalation never sounds wider than the commune: one unacknowledged press
# (a prank at night) must not wake the whole district. A kind may name a wider ceiling.
DEFAULT_MAX_LEVEL = "commune"


@dataclass(frozen=True, slots=True)
class KindPolicy:
    level: str = "hamlet"
    pattern: str | None = None        # None: the pattern named like the kind
    duration_s: int = DEFAULT_ALARM_DURATION_S
    priority: int = protocol.PRIORITY_ALARM
    max_level: str | None = None      # None: DEFAULT_MAX_LEVEL, never below `level`

    @property
    def ceiling(self) -> str:
        """The widest level escalation may sound this kind at."""
        widest = self.max_level or DEFAULT_MAX_LEVEL
        return widest if LEVELS[widest] >= LEVELS[self.level] else self.level


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
    # Escalation steps at most: the first notifies people, later ones widen the gongs up
    # to the kind's ceiling (hub/escalation.py).
    max_escalation: int = 2

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

    def ceiling_area(self, kind: str, origin_area: str) -> str:
        """The widest area escalation may sound an incident of `kind` from `origin_area`."""
        return up(origin_area, LEVELS[self.kind_policy(kind).ceiling])

    def widen_within(self, kind: str, origin_area: str, area: str) -> str:
        """One level wider than `area`, but never past the kind's ceiling (then `area`)."""
        ceiling = self.ceiling_area(kind, origin_area)
        wider = self.widen(area)
        if wider is None or not protocol.area_contains(ceiling, wider):
            return area
        return wider

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
_KIND_KEYS = {"level", "pattern", "duration_s", "priority", "max_level"}
_PATTERN_KEYS = {"area", "name", "steps"}


def parse_policy(data: Mapping[str, Any] | None, source: str = "<memory>") -> Policy:
    """Validate a `[policy]` table; every error names `source` and the dotted key
    (the project's one TOML-table validator, protocol.tomltable)."""
    if data is None:
        return Policy()
    try:
        return _parse(Table(source, "policy", data))
    except TableError as exc:
        raise PolicyError(str(exc)) from None


def _duration(t: Table, name: str, default: int) -> int:
    return int(t.integer(name, default, lo=1, hi=protocol.messages.MAX_SOUND_S))


def _parse(t: Table) -> Policy:
    t.only(_TOP_KEYS)
    names = sorted(k.value for k in Kind)
    kinds: dict[str, KindPolicy] = {}
    kinds_t = t.sub("kinds") or Table(t.source, t.key("kinds"), {})
    for kind in list(kinds_t.data):
        if kind not in names:
            raise kinds_t.fail(kind, f"unknown alarm kind (one of {', '.join(names)})")
        kt = kinds_t.sub(kind)
        assert kt is not None
        kt.only(_KIND_KEYS)
        kp = KindPolicy(
            level=kt.string("level", "hamlet", choices=LEVELS),
            pattern=kt.string("pattern"),
            duration_s=_duration(kt, "duration_s", DEFAULT_ALARM_DURATION_S),
            priority=int(kt.integer("priority", protocol.PRIORITY_ALARM, lo=0,
                                    hi=protocol.messages.MAX_PRIORITY)),
            max_level=kt.string("max_level", choices=LEVELS))
        if kp.max_level is not None and LEVELS[kp.max_level] < LEVELS[kp.level]:
            raise kt.fail("max_level", f"{kp.max_level!r} is narrower than level "
                                       f"{kp.level!r}, where the kind first sounds")
        kinds[kind] = kp
    overrides: list[PatternOverride] = []
    for pt in t.tables("patterns"):
        pt.only(_PATTERN_KEYS)
        area = pt.string("area", required=True)
        if not protocol.is_area_path(area):
            raise pt.fail("area", f"{area!r} is not an area path (1 to 4 slugs [a-z0-9-]+ "
                                  "joined by '/')")
        try:
            pat = Pattern(pt.string("name", required=True), pt.raw("steps", True))
        except protocol.PayloadError as exc:
            raise pt.fail(None, f"{exc} (steps are [[on_ms, off_ms], ...])") from None
        if any(o.area == area and o.pattern.name == pat.name for o in overrides):
            raise pt.fail(None, f"pattern {pat.name!r} for {area!r} is listed twice")
        overrides.append(PatternOverride(area, pat))
    policy = Policy(
        kinds=kinds, overrides=tuple(overrides),
        drill_duration_s=_duration(t, "drill_duration_s", DEFAULT_DRILL_DURATION_S),
        all_clear_duration_s=_duration(t, "all_clear_duration_s", 30),
        warning_duration_s=_duration(t, "warning_duration_s", 60),
        max_escalation=int(t.integer("max_escalation", 2, lo=0, hi=4)),
    )
    # Every kind's pattern must resolve now, not at 2 a.m. during a fire.
    for kind, kp in policy.kinds.items():
        name = kp.pattern or kind
        if name not in protocol.DEFAULT_PATTERNS and not any(
                o.pattern.name == name for o in policy.overrides):
            raise t.fail(f"kinds.{kind}.pattern", f"no pattern named {name!r}")
    return policy
