"""Payload types of PROTOCOL.md as frozen, self-validating value objects.

A message is validated when it is built, whether by node or hub code or by
`codec.decode` from the wire, so an invalid message cannot exist.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self

from . import fields as f
from .errors import PayloadError

VERSION = 1


class Kind(StrEnum):
    """What the household is alarming about."""

    FIRE = "fire"
    THEFT = "theft"
    ROBBERY = "robbery"
    FIGHT = "fight"
    FLOOD = "flood"
    MEDICAL = "medical"
    SOS = "sos"


class Source(StrEnum):
    BUTTON = "button"
    REMOTE = "remote"


class AckStatus(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class Action(StrEnum):
    SOUND = "sound"
    SILENCE = "silence"
    TEST = "test"
    PING = "ping"


class ResultStatus(StrEnum):
    STARTED = "started"
    DONE = "done"
    REJECTED = "rejected"
    FAILED = "failed"


class Power(StrEnum):
    MAINS = "mains"
    BATTERY = "battery"


# Limits the protocol page leaves open; chosen so a hostile command cannot ask
# for more than a node would ever play and still fits 4096 bytes.
MAX_STEPS = 64
MAX_STEP_MS = 86_400_000
MAX_BUTTONS = 16
MAX_OUTPUTS = 8
MAX_SOUND_S = 86_400
MAX_TEST_S = 600
MAX_PRIORITY = 9


@dataclass(frozen=True, slots=True)
class Pattern:
    """A named sound: `[on_ms, off_ms]` steps, repeated for the duration."""

    name: str
    steps: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        f.text(1, 32)("pattern.name", self.name)
        if not isinstance(self.steps, list | tuple):
            raise PayloadError("wrong_type", "field 'pattern.steps' must be a list",
                               field="pattern")
        if not 1 <= len(self.steps) <= MAX_STEPS:
            raise PayloadError(
                "out_of_range", f"field 'pattern.steps' must hold 1..{MAX_STEPS} steps",
                field="pattern",
            )
        steps: list[tuple[int, int]] = []
        for i, step in enumerate(self.steps):
            if not isinstance(step, list | tuple) or len(step) != 2:
                raise PayloadError(
                    "wrong_type", f"pattern step {i} must be [on_ms, off_ms]", field="pattern"
                )
            on = f.integer(0, MAX_STEP_MS)(f"pattern.steps[{i}][0]", step[0])
            off = f.integer(0, MAX_STEP_MS)(f"pattern.steps[{i}][1]", step[1])
            steps.append((on, off))
        if sum(on + off for on, off in steps) <= 0:
            raise PayloadError("bad_value", "pattern steps must last longer than 0 ms",
                               field="pattern")
        if all(on == 0 for on, _ in steps):
            raise PayloadError("bad_value", "pattern must switch the output on at least once",
                               field="pattern")
        object.__setattr__(self, "steps", tuple(steps))

    @property
    def cycle_ms(self) -> int:
        return sum(on + off for on, off in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "steps": [[on, off] for on, off in self.steps]}


def _pattern(name: str, value: Any) -> Pattern:
    if isinstance(value, Pattern):
        return value
    if not isinstance(value, Mapping):
        raise PayloadError("wrong_type", f"field {name!r} must be an object", field=name)
    if "name" not in value or "steps" not in value:
        raise PayloadError("missing_field", f"field {name!r} needs 'name' and 'steps'", field=name)
    return Pattern(value["name"], value["steps"])


def _outputs(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise PayloadError("wrong_type", f"field {name!r} must be a list", field=name)
    if len(value) > MAX_OUTPUTS:
        raise PayloadError("out_of_range", f"field {name!r} holds too many outputs", field=name)
    return tuple(f.node_id(f"{name}[]", v) for v in value)


def _buttons(name: str, value: Any) -> tuple[tuple[int, Kind], ...]:
    items: Any
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, tuple):
        # (number, kind) pairs from code building a message; on the wire (where JSON
        # gives lists, never tuples) it is an object, and a list of pairs is refused.
        items = list(value)
    else:
        raise PayloadError("wrong_type", f"field {name!r} must be an object", field=name)
    if len(items) > MAX_BUTTONS:
        raise PayloadError("out_of_range", f"field {name!r} holds too many buttons", field=name)
    out: dict[int, Kind] = {}
    for item in items:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise PayloadError("wrong_type", f"field {name!r} has a bad entry", field=name)
        key, kind = item
        if isinstance(key, str):
            if not key.isdigit() or len(key) > 3:
                raise PayloadError("bad_value", f"field {name!r} keys must be button numbers",
                                   field=name)
            key = int(key)
        number = f.integer(1, 999)(f"{name} key", key)
        out[number] = f.enum(Kind, "unknown_kind")(f"{name}[{number}]", kind)
    return tuple(sorted(out.items()))


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    # dataclasses.fields() builds a fresh tuple on every call: ~7 % of the hub's
    # CPU per heartbeat; a class's fields never change, so ask once per class.
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(fld.name for fld in dataclasses.fields(cls))
    return names


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every payload: validates its fields on construction."""

    SPEC: ClassVar[dict[str, f.Validator]] = {}
    REQUIRED: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if value is None:
                if name in self.REQUIRED:
                    raise PayloadError("missing_field", f"field {name!r} is required",
                                       field=name)
                continue
            object.__setattr__(self, name, self.SPEC[name](name, value))
        self._check()

    def _check(self) -> None:
        """Rules between fields; overridden where a payload has them."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from a decoded JSON object, ignoring unknown fields."""
        names = _field_names(cls)
        for name in names:
            if name in cls.REQUIRED and data.get(name) is None:
                raise PayloadError("missing_field", f"field {name!r} is required", field=name)
        return cls(**{name: data.get(name) for name in names})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": VERSION}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, Pattern):
                value = value.to_dict()
            elif name == "buttons":
                value = {str(k): v.value for k, v in value}
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out


def _require(msg: Message, name: str, why: str) -> None:
    if getattr(msg, name) is None:
        raise PayloadError("missing_field", f"field {name!r} is required {why}", field=name)


@dataclass(frozen=True, slots=True)
class NodeState(Message):
    """A node's birth (online, retained) or its death / Last Will (offline)."""

    online: bool
    boot_id: int
    ts_ms: int | None = None
    version: str | None = None
    area: str | None = None
    outputs: tuple[str, ...] | None = None
    buttons: tuple[tuple[int, Kind], ...] | None = None

    SPEC: ClassVar[dict[str, f.Validator]] = {
        "online": f.boolean, "boot_id": f.integer(), "ts_ms": f.integer(),
        "version": f.text(1, 32), "area": f.area_path, "outputs": _outputs, "buttons": _buttons,
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"online", "boot_id"})

    def _check(self) -> None:
        if self.online:
            for name in ("ts_ms", "version", "area", "outputs", "buttons"):
                _require(self, name, "in a birth (online: true)")


@dataclass(frozen=True, slots=True)
class Alarm(Message):
    alarm_id: str
    kind: Kind
    ts_ms: int
    source: Source
    attempt: int
    button: int | None = None
    # False: stamped on the node's own clock (no hub beacon heard since it booted), so
    # `ts_ms` says nothing about the alarm's age. Omitted (None) means synced: a client
    # that predates the field is judged as before (docs/protocol-notes.md).
    clock_synced: bool | None = None

    SPEC: ClassVar[dict[str, f.Validator]] = {
        "alarm_id": f.uuid_str, "kind": f.enum(Kind, "unknown_kind"), "ts_ms": f.integer(),
        "source": f.enum(Source), "attempt": f.integer(1, 2**31 - 1), "button": f.integer(1, 999),
        "clock_synced": f.boolean,
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"alarm_id", "kind", "ts_ms", "source",
                                                     "attempt"})


@dataclass(frozen=True, slots=True)
class Cancel(Message):
    alarm_id: str
    ts_ms: int

    SPEC: ClassVar[dict[str, f.Validator]] = {"alarm_id": f.uuid_str, "ts_ms": f.integer()}
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"alarm_id", "ts_ms"})


@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    boot_id: int
    seq: int
    ts_ms: int
    uptime_s: int
    outbox: int
    power: Power | None = None
    battery_pct: float | None = None
    temp_c: float | None = None
    rssi_dbm: float | None = None

    SPEC: ClassVar[dict[str, f.Validator]] = {
        "boot_id": f.integer(), "seq": f.integer(), "ts_ms": f.integer(),
        "uptime_s": f.integer(), "outbox": f.integer(), "power": f.enum(Power),
        "battery_pct": f.number(0, 100), "temp_c": f.number(-80, 200),
        "rssi_dbm": f.number(-200, 0),
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"boot_id", "seq", "ts_ms", "uptime_s",
                                                     "outbox"})


@dataclass(frozen=True, slots=True)
class Ack(Message):
    alarm_id: str
    status: AckStatus
    ts_ms: int
    incident_id: str | None = None
    reason: str | None = None

    SPEC: ClassVar[dict[str, f.Validator]] = {
        "alarm_id": f.uuid_str, "status": f.enum(AckStatus), "ts_ms": f.integer(),
        "incident_id": f.uuid_str, "reason": f.text(1, 200),
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"alarm_id", "status", "ts_ms"})

    def _check(self) -> None:
        if self.status is AckStatus.REJECTED:
            _require(self, "reason", "when status is 'rejected'")
            if self.incident_id is not None:
                raise PayloadError("bad_value", "a 'rejected' ack carries no incident_id",
                                   field="incident_id")
        else:
            _require(self, "incident_id", f"when status is {self.status.value!r}")


# PROTOCOL.md's per-action table: what each action requires and allows.
ACTION_REQUIRED: dict[Action, frozenset[str]] = {
    Action.SOUND: frozenset({"pattern", "duration_s", "priority"}),
    Action.SILENCE: frozenset(),
    Action.TEST: frozenset(),
    Action.PING: frozenset(),
}
ACTION_OPTIONAL: dict[Action, frozenset[str]] = {
    Action.SOUND: frozenset({"incident_id", "drill"}),
    Action.SILENCE: frozenset({"incident_id"}),
    Action.TEST: frozenset({"duration_s"}),
    Action.PING: frozenset(),
}
_ACTION_FIELDS = {"pattern", "duration_s", "priority", "incident_id", "drill"}


@dataclass(frozen=True, slots=True)
class Command(Message):
    cmd_id: str
    action: Action
    ts_ms: int
    expires_ts_ms: int
    pattern: Pattern | None = None
    duration_s: int | None = None
    priority: int | None = None
    incident_id: str | None = None
    drill: bool | None = None

    SPEC: ClassVar[dict[str, f.Validator]] = {
        "cmd_id": f.uuid_str, "action": f.enum(Action), "ts_ms": f.integer(),
        "expires_ts_ms": f.integer(), "pattern": _pattern, "duration_s": f.integer(1, MAX_SOUND_S),
        "priority": f.integer(0, MAX_PRIORITY), "incident_id": f.uuid_str, "drill": f.boolean,
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"cmd_id", "action", "ts_ms",
                                                     "expires_ts_ms"})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        # Fields outside the action's row are unknown fields for that action:
        # ignored on the wire, refused from a constructor (see _check).
        action = f.enum(Action)("action", data.get("action")) if "action" in data else None
        if action is not None:
            keep = ACTION_REQUIRED[action] | ACTION_OPTIONAL[action]
            data = {k: v for k, v in data.items() if k not in _ACTION_FIELDS or k in keep}
        return super(Command, cls).from_dict(data)

    def _check(self) -> None:
        if self.expires_ts_ms < self.ts_ms:
            raise PayloadError("bad_value", "field 'expires_ts_ms' is before 'ts_ms'",
                               field="expires_ts_ms")
        for name in ACTION_REQUIRED[self.action]:
            _require(self, name, f"for action {self.action.value!r}")
        allowed = ACTION_REQUIRED[self.action] | ACTION_OPTIONAL[self.action]
        for name in _ACTION_FIELDS - allowed:
            if getattr(self, name) is not None:
                raise PayloadError("bad_value",
                                   f"field {name!r} is not used by action {self.action.value!r}",
                                   field=name)
        if self.action is Action.TEST and self.duration_s is not None \
                and self.duration_s > MAX_TEST_S:
            raise PayloadError("out_of_range", f"a test lasts at most {MAX_TEST_S} s",
                               field="duration_s")

    @property
    def is_drill(self) -> bool:
        return bool(self.drill)


@dataclass(frozen=True, slots=True)
class Result(Message):
    cmd_id: str
    status: ResultStatus
    ts_ms: int
    reason: str | None = None

    SPEC: ClassVar[dict[str, f.Validator]] = {
        "cmd_id": f.uuid_str, "status": f.enum(ResultStatus), "ts_ms": f.integer(),
        "reason": f.text(1, 200),
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"cmd_id", "status", "ts_ms"})

    def _check(self) -> None:
        if self.status in (ResultStatus.REJECTED, ResultStatus.FAILED):
            _require(self, "reason", f"when status is {self.status.value!r}")


@dataclass(frozen=True, slots=True)
class HubState(Message):
    online: bool
    hub_id: str
    ts_ms: int | None = None

    SPEC: ClassVar[dict[str, f.Validator]] = {
        "online": f.boolean, "hub_id": f.node_id, "ts_ms": f.integer(),
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"online", "hub_id"})

    def _check(self) -> None:
        if self.online:
            _require(self, "ts_ms", "in a hub birth (online: true)")


@dataclass(frozen=True, slots=True)
class HubTime(Message):
    hub_id: str
    ts_ms: int

    SPEC: ClassVar[dict[str, f.Validator]] = {"hub_id": f.node_id, "ts_ms": f.integer()}
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"hub_id", "ts_ms"})
