"""Plain frozen values the store hands out; ORM objects never leave the store.

Everything here is safe to keep, compare, log and pass between threads.
Times are integer milliseconds since the epoch on the hub's clock unless a
name says otherwise (`pressed_ms` is the node's clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class NodeStatus(StrEnum):
    """Supervision state of a node (PROTOCOL.md rule 7)."""

    ONLINE = "online"
    OFFLINE = "offline"   # its death (Last Will or graceful stop) arrived
    MISSING = "missing"   # heartbeats stopped without a death
    UNKNOWN = "unknown"   # registered, never heard from


class IncidentState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


class Outcome(StrEnum):
    """What an operator found when resolving an incident."""

    REAL = "real"
    FALSE_ALARM = "false_alarm"
    PRANK = "prank"
    TEST = "test"


class TroubleKind(StrEnum):
    NODE_OFFLINE = "node_offline"
    NODE_MISSING = "node_missing"
    AREA_LOSS = "area_loss"
    NOISY_NODE = "noisy_node"
    FAILED_TO_SOUND = "failed_to_sound"
    SOUNDER_FAULT = "sounder_fault"
    UNKNOWN_NODE = "unknown_node"
    DISABLED_NODE = "disabled_node"
    LOW_BATTERY = "low_battery"
    ON_BATTERY = "on_battery"
    POWER_CUT = "power_cut"   # many nodes of one area on battery at once: ONE event
    OUTBOX_BACKLOG = "outbox_backlog"
    NO_BROKER = "no_broker"
    DATABASE_RECREATED = "database_recreated"   # the database came back empty (critical)
    # Alarms by phone (hub/integrations/phone.py): subject the caller's number.
    PHONE_CALL = "phone_call"           # a missed-call alarm waiting for its confirmation
    UNKNOWN_CALLER = "unknown_caller"   # an alarm from a number no household holds
    PHONE_FLOOD = "phone_flood"         # one number over the per-number rate limit


# Kind of an incident opened by an operator's drill (never a wire alarm kind).
DRILL_KIND = "drill"


@dataclass(frozen=True, slots=True)
class AreaInfo:
    path: str
    name: str
    level: str | None
    depth: int
    parent: str | None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    id: str
    area: str | None            # registry area; for an unknown node, the area it reports
    name: str | None
    households: int | None
    lat: float | None
    lon: float | None
    enabled: bool
    registered: bool            # listed in the registry or registered by an operator
    registered_by: str | None   # "registry" | "operator" | None (seen, never registered)
    reported_area: str | None   # what the node's birth said
    status: NodeStatus
    status_since_ms: int | None
    boot_id: int | None
    version: str | None
    outputs: tuple[str, ...]
    buttons: tuple[tuple[int, str], ...]
    last_seen_ms: int | None     # any message from the node
    last_heartbeat_ms: int | None
    heartbeat: dict[str, Any] = field(default_factory=dict)  # last heartbeat's fields


@dataclass(frozen=True, slots=True)
class AlarmInfo:
    alarm_id: str
    node_id: str
    kind: str
    pressed_ms: int          # the node's clock (may be wrong)
    received_ms: int         # the hub's clock at first receipt
    source: str
    button: int | None
    attempts: int            # highest `attempt` seen
    copies: int              # how many copies arrived
    incident_id: str
    area: str | None
    unknown_node: bool
    disabled_node: bool
    fanout_held: bool        # noisy-node limit held back its fan-out
    drill: bool
    cancelled: bool
    cancelled_ms: int | None
    late: bool = False       # too old when it arrived (hub.freshness): stored, not sounded


@dataclass(frozen=True, slots=True)
class IncidentInfo:
    incident_id: str
    kind: str
    area: str | None          # the hamlet: the origin node's area
    origin_node: str | None
    state: IncidentState
    opened_ms: int
    last_alarm_ms: int | None
    alarm_count: int
    acknowledged_ms: int | None
    acknowledged_by: str | None
    resolved_ms: int | None
    resolved_by: str | None
    outcome: Outcome | None
    note: str | None
    drill: bool
    escalation_level: int
    escalated_ms: int | None
    sounded_area: str | None
    fanned_out: bool
    flagged: bool             # from an unknown or disabled node: never fanned out
    fanout_held: bool         # a noisy node's: stored, not fanned out
    late: bool = False        # opened by a late alarm (hub.freshness): never sounded

    @property
    def is_open(self) -> bool:
        return self.state in (IncidentState.OPEN, IncidentState.ACKNOWLEDGED)


@dataclass(frozen=True, slots=True)
class AlarmOutcome:
    """What `Alarms.record_batch` did, in one transaction, for one copy of an alarm."""

    alarm_id: str
    incident_id: str
    new_alarm: bool           # False for a repeated copy (same alarm_id)
    new_incident: bool
    node_known: bool
    node_enabled: bool
    fan_out: bool             # True only for the first alarm of a new incident, from a
                              # known, enabled, not noisy node: the caller sounds it
    incident: IncidentInfo
    alarm: AlarmInfo
    # The alarm_id is another node's (the alarm above is that node's): refused, never
    # this node's copy; nothing was written for it (hub.freshness).
    foreign: bool = False


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    alarm: AlarmInfo | None       # None: no such alarm from this node
    incident: IncidentInfo | None
    new_cancel: bool              # False when it was already cancelled
    incident_cancelled: bool      # this cancel closed the incident (every alarm cancelled)


@dataclass(frozen=True, slots=True)
class NodeChange:
    """What a birth, death or heartbeat did to a node."""

    node: NodeInfo
    applied: bool                 # False for a stale death (boot_id below the latest birth)
    previous_status: NodeStatus
    known: bool                   # registered
    new_boot: bool = False        # a birth with a boot_id not seen before


@dataclass(frozen=True, slots=True)
class CommandInfo:
    cmd_id: str
    action: str
    target_kind: str              # "area" | "node"
    target: str
    incident_id: str | None
    payload: dict[str, Any]       # the command as sent on the wire
    issued_ms: int
    expires_ms: int
    drill: bool
    issued_by: str
    note: str | None


@dataclass(frozen=True, slots=True)
class ResultInfo:
    cmd_id: str
    node_id: str
    status: str
    reason: str | None
    ts_ms: int                    # the node's clock
    received_ms: int


@dataclass(frozen=True, slots=True)
class ResultOutcome:
    result: ResultInfo
    new: bool                     # False for a repeated copy
    command: CommandInfo | None   # None: a result for a command this hub never issued


@dataclass(frozen=True, slots=True)
class TroubleInfo:
    id: int
    kind: str
    subject: str                  # a node id or an area path
    state: str                    # "open" | "cleared"
    opened_ms: int
    cleared_ms: int | None
    detail: dict[str, Any]


class TroubleRef(NamedTuple):
    id: int
    new: bool                     # False: that trouble was already open


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts_ms: int
    actor: str
    action: str
    subject: str | None
    detail: dict[str, Any]
