"""Typed SQLAlchemy models of the hub's tables. Used inside hub.store only.

Correlation and idempotency are database constraints, not timing:
- `alarms.alarm_id` is the primary key: a second copy of an alarm cannot be a second row.
- `incidents.corr_key` is UNIQUE and set only while an incident still accepts alarms
  (kind|hamlet|flagged); closing it or its window ending sets it NULL (NULLs never
  collide), so two replicas racing to open the same incident: one insert fails.
- `troubles.open_key` likewise allows one open trouble per kind|subject.
- `command_results` is unique per cmd_id + node_id + status.
The migrations in hub/db/migrations create exactly these tables; a test compares them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so later migrations can refer to them on both databases.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

AREA = 260      # 4 slugs of 63 + separators
NODE = 63
UUID = 36
ACTOR = 100


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Area(Base):
    __tablename__ = "areas"
    path: Mapped[str] = mapped_column(String(AREA), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str | None] = mapped_column(String(40))
    depth: Mapped[int] = mapped_column(Integer)
    parent: Mapped[str | None] = mapped_column(String(AREA))


class Node(Base):
    __tablename__ = "nodes"
    id: Mapped[str] = mapped_column(String(NODE), primary_key=True)
    area: Mapped[str | None] = mapped_column(String(AREA), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    households: Mapped[int | None] = mapped_column(Integer)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    registered: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_by: Mapped[str | None] = mapped_column(String(16))
    reported_area: Mapped[str | None] = mapped_column(String(AREA))
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    status_since_ms: Mapped[int | None] = mapped_column(BigInteger)
    boot_id: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[str | None] = mapped_column(String(32))
    outputs: Mapped[list[str]] = mapped_column(JSON, default=list)
    buttons: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    last_seen_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_heartbeat_ms: Mapped[int | None] = mapped_column(BigInteger)
    heartbeat: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_ms: Mapped[int] = mapped_column(BigInteger)


class Incident(Base):
    __tablename__ = "incidents"
    incident_id: Mapped[str] = mapped_column(String(UUID), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    area: Mapped[str | None] = mapped_column(String(AREA))
    origin_node: Mapped[str | None] = mapped_column(String(NODE))
    state: Mapped[str] = mapped_column(String(16), index=True)
    corr_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    opened_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    last_alarm_ms: Mapped[int | None] = mapped_column(BigInteger)
    alarm_count: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_ms: Mapped[int | None] = mapped_column(BigInteger)
    acknowledged_by: Mapped[str | None] = mapped_column(String(ACTOR))
    resolved_ms: Mapped[int | None] = mapped_column(BigInteger)
    resolved_by: Mapped[str | None] = mapped_column(String(ACTOR))
    outcome: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_ms: Mapped[int | None] = mapped_column(BigInteger)
    sounded_area: Mapped[str | None] = mapped_column(String(AREA))
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    fanout_held: Mapped[bool] = mapped_column(Boolean, default=False)
    # Opened by an alarm too old to sound (hub.freshness): shown, never sounded.
    late: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (Index("ix_incidents_origin_opened", "origin_node", "opened_ms"),)


class Alarm(Base):
    __tablename__ = "alarms"
    alarm_id: Mapped[str] = mapped_column(String(UUID), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(NODE), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    pressed_ms: Mapped[int] = mapped_column(BigInteger)
    received_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    source: Mapped[str] = mapped_column(String(16))
    button: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    copies: Mapped[int] = mapped_column(Integer, default=1)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.incident_id"), index=True)
    area: Mapped[str | None] = mapped_column(String(AREA))
    unknown_node: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_node: Mapped[bool] = mapped_column(Boolean, default=False)
    fanout_held: Mapped[bool] = mapped_column(Boolean, default=False)
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_ms: Mapped[int | None] = mapped_column(BigInteger)
    # Older than `alarm_max_age_s` when it arrived (hub.freshness): stored, not sounded.
    late: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Command(Base):
    __tablename__ = "commands"
    cmd_id: Mapped[str] = mapped_column(String(UUID), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    target_kind: Mapped[str] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(AREA))
    incident_id: Mapped[str | None] = mapped_column(ForeignKey("incidents.incident_id"),
                                                    index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    expires_ms: Mapped[int] = mapped_column(BigInteger)
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    issued_by: Mapped[str] = mapped_column(String(ACTOR))
    note: Mapped[str | None] = mapped_column(Text)


class CommandResult(Base):
    __tablename__ = "command_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # No foreign key: a result may name a command another hub issued, and is kept anyway.
    cmd_id: Mapped[str] = mapped_column(String(UUID), index=True)
    node_id: Mapped[str] = mapped_column(String(NODE))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    received_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("cmd_id", "node_id", "status",
                                       name="uq_command_results_cmd_node_status"),)


class Trouble(Base):
    __tablename__ = "troubles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(AREA), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    open_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    opened_ms: Mapped[int] = mapped_column(BigInteger)
    cleared_ms: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditRow(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    actor: Mapped[str] = mapped_column(String(ACTOR))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(AREA), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- operators, sessions, tokens and the event log (migration 0002) -------------------------
# Secrets are never stored: passwords as argon2 hashes, session and API tokens as SHA-256 of
# 256-bit random values (a leaked table gives nobody a way in).

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    last_login_ms: Mapped[int | None] = mapped_column(BigInteger)
    # The area subtree this user is limited to (None: the whole hub; migration 0004).
    area: Mapped[str | None] = mapped_column(String(AREA))


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(ACTOR))
    last_used_ms: Mapped[int | None] = mapped_column(BigInteger)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger)
    area: Mapped[str | None] = mapped_column(String(AREA))   # as users.area


class WebSession(Base):
    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    last_seen_ms: Mapped[int] = mapped_column(BigInteger)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class LoginThrottle(Base):
    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "user:x" | "ip:a.b.c.d"
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_ms: Mapped[int] = mapped_column(BigInteger)
    locked_until_ms: Mapped[int | None] = mapped_column(BigInteger)


class EventRow(Base):
    """One change to an incident, alarm, node, trouble or command, appended by database
    triggers (migration 0002) in the same transaction as the change, whoever made it."""

    __tablename__ = "events"
    # AUTOINCREMENT on SQLite: ids are never reused after old events are pruned, so a
    # client's Last-Event-ID keeps meaning the same event.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    type: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(AREA))

    __table_args__ = ({"sqlite_autoincrement": True},)


# --- integrations (migration 0003): webhook subscribers and deliveries, SMS responders per
# area, CAP alerts taken in. Every webhook delivery is a row, so what was sent, retried or
# given up on is on record; one row per (subscriber, event) makes replicas send it once.

class WebhookSubscriber(Base):
    __tablename__ = "webhook_subscribers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscribers.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(AREA))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))      # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger)
    last_attempt_ms: Mapped[int | None] = mapped_column(BigInteger)
    response_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    delivered_ms: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("subscriber_id", "event_id", name="uq_webhook_deliveries_sub_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_ms"),
    )


class Responder(Base):
    __tablename__ = "responders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    area: Mapped[str] = mapped_column(String(AREA), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16))      # "config" | "operator"
    created_ms: Mapped[int] = mapped_column(BigInteger)


class CapInbound(Base):
    __tablename__ = "cap_inbound"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender: Mapped[str] = mapped_column(String(200))
    identifier: Mapped[str] = mapped_column(String(200))
    sent: Mapped[str] = mapped_column(String(40))
    msg_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    received_ms: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(ACTOR))
    areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    cmd_ids: Mapped[list[str]] = mapped_column(JSON, default=list)

    __table_args__ = (UniqueConstraint("sender", "identifier", name="uq_cap_inbound_sender_id"),)
