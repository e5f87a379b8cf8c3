"""Operators and the live stream: users, api_tokens, sessions, login_throttle, events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

`events` is filled by triggers on incidents, alarms, nodes, troubles, commands and
command_results, in the same transaction as the change. So every change is logged
whichever code path (or replica, or future module) made it, and an event is never
logged for a change that was rolled back. The API's live stream replays this table
to a reconnecting client (Last-Event-ID).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# table -> (event type, key column, columns whose change is worth an event)
_WATCHED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "incidents": ("incident", "incident_id", (
        "state", "alarm_count", "acknowledged_ms", "resolved_ms", "outcome", "note",
        "escalation_level", "sounded_area", "fanned_out", "fanout_held", "area", "flagged")),
    "alarms": ("alarm", "alarm_id", ("cancelled", "incident_id")),
    "nodes": ("node", "id", (
        "status", "enabled", "registered", "area", "name", "households", "lat", "lon",
        "boot_id", "version")),
    "troubles": ("trouble", "id", ("state", "detail")),
    "commands": ("command", "cmd_id", ()),
}
# Heartbeat fields shown in the node health table: a change is an event, a new seq is not.
_HEALTH = ("outbox", "power", "battery_pct", "rssi_dbm")
# A node's result changes its command's progress and whether the node is sounding.
_RESULT_EVENTS = (("command", "cmd_id"), ("node", "node_id"))

_SQLITE_NOW = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)"


def _sqlite_changed(cols: tuple[str, ...], table: str) -> str:
    parts = [f"OLD.{c} IS NOT NEW.{c}" for c in cols]
    if table == "nodes":
        parts += [f"json_extract(OLD.heartbeat, '$.{f}') IS NOT "
                  f"json_extract(NEW.heartbeat, '$.{f}')" for f in _HEALTH]
    return " OR ".join(parts)


def _pg_changed(cols: tuple[str, ...], table: str) -> str:
    # json columns have no equality operator in PostgreSQL: compare their text.
    parts = [f"OLD.{c}::text IS DISTINCT FROM NEW.{c}::text" if c == "detail"
             else f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in cols]
    if table == "nodes":
        parts += [f"(OLD.heartbeat ->> '{f}') IS DISTINCT FROM (NEW.heartbeat ->> '{f}')"
                  for f in _HEALTH]
    return " OR ".join(parts)


def _sqlite_triggers() -> list[str]:
    out = []
    for table, (etype, key, cols) in _WATCHED.items():
        insert = (f"INSERT INTO events (ts_ms, type, subject) "
                  f"VALUES ({_SQLITE_NOW}, '{etype}', NEW.{key});")
        out.append(f"CREATE TRIGGER ev_{table}_ins AFTER INSERT ON {table} "
                   f"BEGIN {insert} END")
        if cols:
            out.append(f"CREATE TRIGGER ev_{table}_upd AFTER UPDATE ON {table} "
                       f"WHEN {_sqlite_changed(cols, table)} BEGIN {insert} END")
    body = " ".join(f"INSERT INTO events (ts_ms, type, subject) "
                    f"VALUES ({_SQLITE_NOW}, '{etype}', NEW.{key});"
                    for etype, key in _RESULT_EVENTS)
    out.append(f"CREATE TRIGGER ev_command_results_ins AFTER INSERT ON command_results "
               f"BEGIN {body} END")
    return out


def _sqlite_trigger_names() -> list[str]:
    names = []
    for table, (_e, _k, cols) in _WATCHED.items():
        names.append(f"ev_{table}_ins")
        if cols:
            names.append(f"ev_{table}_upd")
    return [*names, "ev_command_results_ins"]


_PG_FUNCTION = (
    "CREATE FUNCTION tiengmo_event() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO events (ts_ms, type, subject) VALUES "
    "((extract(epoch from clock_timestamp()) * 1000)::bigint, TG_ARGV[0], "
    "to_jsonb(NEW) ->> TG_ARGV[1]); RETURN NULL; END $$")


def _pg_triggers() -> list[str]:
    out = [_PG_FUNCTION]
    for table, (etype, key, cols) in _WATCHED.items():
        call = f"EXECUTE FUNCTION tiengmo_event('{etype}', '{key}')"
        out.append(f"CREATE TRIGGER ev_{table}_ins AFTER INSERT ON {table} "
                   f"FOR EACH ROW {call}")
        if cols:
            out.append(f"CREATE TRIGGER ev_{table}_upd AFTER UPDATE ON {table} FOR EACH ROW "
                       f"WHEN ({_pg_changed(cols, table)}) {call}")
    for etype, key in _RESULT_EVENTS:
        out.append(f"CREATE TRIGGER ev_command_results_{etype} AFTER INSERT ON "
                   f"command_results FOR EACH ROW EXECUTE FUNCTION "
                   f"tiengmo_event('{etype}', '{key}')")
    return out


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_login_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("last_used_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sessions_token_hash")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_ms", sa.BigInteger(), nullable=False),
        sa.Column("locked_until_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=260), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_ts_ms"), ["ts_ms"], unique=False)
    pg = op.get_bind().dialect.name == "postgresql"
    for sql in _pg_triggers() if pg else _sqlite_triggers():
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS tiengmo_event() CASCADE")  # and its triggers
    else:
        for name in _sqlite_trigger_names():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_ts_ms"))
    op.drop_table("events")
    op.drop_table("login_throttle")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_user_id"))
    op.drop_table("sessions")
    op.drop_table("api_tokens")
    op.drop_table("users")
