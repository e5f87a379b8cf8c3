"""Pydantic schemas of the operators' API, one per direction: `...Create` and `...Update`
(what a client may send; unknown fields are refused) and `...Public` (what it gets).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["viewer", "operator", "admin"]
OutcomeName = Literal["real", "false_alarm", "prank", "test"]
USERNAME = r"^[a-z0-9][a-z0-9._-]{1,63}$"
AREA = r"^[a-z0-9][a-z0-9-]{0,62}(/[a-z0-9][a-z0-9-]{0,62}){0,3}$"
NODE_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
# Times, cursors and ids are 64-bit in the database: a larger number is refused with a 422
# naming it, not left to overflow into a 500 (found by tests/security/test_openapi_fuzz.py).
INT64_MAX = 2**63 - 1


class In(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- session and users --------------------------------------------------------------------------

class LoginCreate(In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserPublic(BaseModel):
    username: str
    role: Role
    display_name: str | None
    active: bool = True
    created_ms: int | None = None
    last_login_ms: int | None = None
    area: str | None = None         # limited to this area subtree (null: the whole hub)
    area_name: str | None = None


class SessionPublic(BaseModel):
    user: UserPublic
    csrf_token: str
    idle_expiry_s: float
    max_expiry_s: float


AREA_LIMIT = "limit to this area subtree of the registry; null or absent: the whole hub"


class UserCreate(In):
    username: str = Field(pattern=USERNAME, description="2-64 of a-z 0-9 . _ -")
    password: str = Field(min_length=1, max_length=1024)
    role: Role
    display_name: str | None = Field(default=None, max_length=200)
    area: str | None = Field(default=None, max_length=260, description=AREA_LIMIT)


class UserUpdate(In):
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    role: Role | None = None
    display_name: str | None = Field(default=None, max_length=200)
    active: bool | None = None
    area: str | None = Field(default=None, max_length=260, description=(
        "a new area subtree; null or \"\" makes the user hub-wide; absent: unchanged"))
    # What the admin saw: another (changed meanwhile by someone else) is 409 saying who.
    expected_role: Role | None = None
    expected_active: bool | None = None


class TokenCreate(In):
    name: str = Field(min_length=1, max_length=100)
    role: Role
    area: str | None = Field(default=None, max_length=260, description=AREA_LIMIT)


class TokenPublic(BaseModel):
    id: int
    name: str
    role: Role
    prefix: str
    created_ms: int
    created_by: str
    last_used_ms: int | None
    revoked_ms: int | None
    area: str | None = None


class TokenCreated(TokenPublic):
    token: str = Field(description="shown once; the hub keeps only its SHA-256")


# --- areas and nodes -----------------------------------------------------------------------------

class AreaPublic(BaseModel):
    path: str
    name: str
    level: str | None
    depth: int
    parent: str | None


class HouseholdPublic(BaseModel):
    """A household of the registry that may alarm by phone (docs/phone-alarms.md)."""
    id: str
    area: str
    name: str | None
    phones: list[str]


class NodePublic(BaseModel):
    id: str
    name: str | None
    area: str | None
    households: int | None
    lat: float | None
    lon: float | None
    enabled: bool
    registered: bool
    registered_by: str | None
    reported_area: str | None
    status: Literal["online", "offline", "missing", "unknown"]
    status_since_ms: int | None
    sounding: bool
    last_seen_ms: int | None
    last_heartbeat_ms: int | None
    boot_id: int | None
    version: str | None
    outbox: int | None
    power: str | None
    battery_pct: float | None
    rssi_dbm: float | None
    temp_c: float | None
    outputs: list[str]
    buttons: list[dict[str, Any]]
    led: str | None = Field(default=None, description="not reported by nodes: always null")


class NodeCreate(In):
    id: str = Field(pattern=NODE_ID)
    area: str = Field(pattern=AREA)
    name: str | None = Field(default=None, max_length=200)
    households: int | None = Field(default=None, ge=0, le=100_000)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    enabled: bool = True


class NodeUpdate(In):
    enabled: bool | None = None
    area: str | None = Field(default=None, pattern=AREA)
    # What the admin saw: another (changed meanwhile by someone else) is 409 saying who.
    expected_enabled: bool | None = None
    expected_area: str | None = Field(default=None, pattern=AREA)


class NodeTestCreate(In):
    duration_s: int | None = Field(default=None, ge=1, le=600)


# --- incidents, alarms, commands -----------------------------------------------------------------

class AlarmPublic(BaseModel):
    id: str
    node_id: str
    kind: str
    area: str | None
    pressed_ms: int
    received_ms: int
    source: str
    button: int | None
    attempts: int
    copies: int
    incident_id: str
    unknown_node: bool
    disabled_node: bool
    fanout_held: bool
    drill: bool
    cancelled: bool
    cancelled_ms: int | None
    late: bool = False   # too old when it arrived: stored, never sounded


class ResultPublic(BaseModel):
    node_id: str
    status: str
    reason: str | None
    ts_ms: int
    received_ms: int


class CommandPublic(BaseModel):
    id: str
    action: str
    target_kind: str
    target: str
    incident_id: str | None
    issued_ms: int
    expires_ms: int
    drill: bool
    issued_by: str
    note: str | None
    pattern: str | None
    duration_s: int | None
    priority: int | None
    results: list[ResultPublic]


class IncidentPublic(BaseModel):
    id: str
    kind: str
    area: str | None
    area_name: str | None
    state: Literal["open", "acknowledged", "resolved", "cancelled"]
    drill: bool
    flagged: bool
    fanout_held: bool
    late: bool = False   # opened by an alarm too old to sound: shown, never sounded
    opened_ms: int
    first_press_ms: int | None
    last_alarm_ms: int | None
    acknowledged_ms: int | None
    acknowledged_by: str | None
    resolved_ms: int | None
    resolved_by: str | None
    outcome: OutcomeName | None
    note: str | None
    escalation_level: int
    sounded_area: str | None
    alarm_count: int
    origin_node: str | None
    # When the incident takes its next escalation step if nobody acknowledges it (the
    # board's countdown); null once acknowledged or closed, for drills, and after the last.
    next_escalation_ms: int | None = None


class IncidentDetail(IncidentPublic):
    alarms: list[AlarmPublic]
    commands: list[CommandPublic]


class AcknowledgeCreate(In):
    expected_state: Literal["open"] | None = Field(
        default=None, description="the state the client saw; another is 409")


class ResolveCreate(In):
    outcome: OutcomeName
    note: str | None = Field(default=None, max_length=2000)
    expected_state: Literal["open", "acknowledged", "cancelled"] | None = Field(
        default=None, description="the state the client saw; another is 409 (who, when)")


class AllClearCreate(In):
    duration_s: int | None = Field(default=None, ge=1, le=600)


class BroadcastCreate(In):
    area: str = Field(pattern=AREA)
    signal: str = Field(min_length=1, max_length=40,
                        description="an alarm kind (fire, flood, ...) or a pattern name")
    duration_s: int | None = Field(default=None, ge=1, le=3600)
    message: str | None = Field(default=None, max_length=500)


class DrillCreate(In):
    area: str = Field(pattern=AREA)
    duration_s: int | None = Field(default=None, ge=1, le=3600)


class DrillPublic(BaseModel):
    incident: IncidentPublic
    command: CommandPublic


# --- troubles and audit --------------------------------------------------------------------------

class TroublePublic(BaseModel):
    id: int
    kind: str
    subject: str
    state: str
    opened_ms: int
    cleared_ms: int | None
    detail: dict[str, Any]


class AuditPublic(BaseModel):
    id: int
    ts_ms: int
    actor: str
    action: str
    subject: str | None
    detail: dict[str, Any]
