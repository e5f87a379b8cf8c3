"""Initial schema: areas, nodes, incidents, alarms, commands, results, troubles, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-30

The audit log is append-only in the database itself (triggers on both SQLite and
PostgreSQL), so no code path, present or future, can rewrite who did what.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "areas",
        sa.Column("path", sa.String(length=260), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=40), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("parent", sa.String(length=260), nullable=True),
        sa.PrimaryKeyConstraint("path", name=op.f("pk_areas")),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=260), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_subject"), ["subject"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_ts_ms"), ["ts_ms"], unique=False)

    op.create_table(
        "command_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cmd_id", sa.String(length=36), nullable=False),
        sa.Column("node_id", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_command_results")),
        sa.UniqueConstraint(
            "cmd_id", "node_id", "status", name="uq_command_results_cmd_node_status"
        ),
    )
    with op.batch_alter_table("command_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_command_results_cmd_id"), ["cmd_id"], unique=False)

    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("area", sa.String(length=260), nullable=True),
        sa.Column("origin_node", sa.String(length=63), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("corr_key", sa.String(length=400), nullable=True),
        sa.Column("opened_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_alarm_ms", sa.BigInteger(), nullable=True),
        sa.Column("alarm_count", sa.Integer(), nullable=False),
        sa.Column("acknowledged_ms", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.Column("resolved_ms", sa.BigInteger(), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("drill", sa.Boolean(), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("escalated_ms", sa.BigInteger(), nullable=True),
        sa.Column("sounded_area", sa.String(length=260), nullable=True),
        sa.Column("fanned_out", sa.Boolean(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("fanout_held", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("corr_key", name=op.f("uq_incidents_corr_key")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidents_opened_ms"), ["opened_ms"], unique=False)
        batch_op.create_index(
            "ix_incidents_origin_opened", ["origin_node", "opened_ms"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_incidents_state"), ["state"], unique=False)

    op.create_table(
        "nodes",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("area", sa.String(length=260), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("households", sa.Integer(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("registered", sa.Boolean(), nullable=False),
        sa.Column("registered_by", sa.String(length=16), nullable=True),
        sa.Column("reported_area", sa.String(length=260), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_since_ms", sa.BigInteger(), nullable=True),
        sa.Column("boot_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.String(length=32), nullable=True),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("buttons", sa.JSON(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_heartbeat_ms", sa.BigInteger(), nullable=True),
        sa.Column("heartbeat", sa.JSON(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
    )
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nodes_area"), ["area"], unique=False)

    op.create_table(
        "troubles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=260), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("open_key", sa.String(length=300), nullable=True),
        sa.Column("opened_ms", sa.BigInteger(), nullable=False),
        sa.Column("cleared_ms", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_troubles")),
        sa.UniqueConstraint("open_key", name=op.f("uq_troubles_open_key")),
    )
    with op.batch_alter_table("troubles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_troubles_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_troubles_subject"), ["subject"], unique=False)

    op.create_table(
        "alarms",
        sa.Column("alarm_id", sa.String(length=36), nullable=False),
        sa.Column("node_id", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("pressed_ms", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("button", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("area", sa.String(length=260), nullable=True),
        sa.Column("unknown_node", sa.Boolean(), nullable=False),
        sa.Column("disabled_node", sa.Boolean(), nullable=False),
        sa.Column("fanout_held", sa.Boolean(), nullable=False),
        sa.Column("drill", sa.Boolean(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("cancelled_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.incident_id"], name=op.f("fk_alarms_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("alarm_id", name=op.f("pk_alarms")),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarms_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_node_id"), ["node_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_received_ms"), ["received_ms"], unique=False)

    _audit_append_only()

    op.create_table(
        "commands",
        sa.Column("cmd_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("target_kind", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=260), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("issued_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("drill", sa.Boolean(), nullable=False),
        sa.Column("issued_by", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident_id"],
            name=op.f("fk_commands_incident_id_incidents"),
        ),
        sa.PrimaryKeyConstraint("cmd_id", name=op.f("pk_commands")),
    )
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_commands_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_commands_issued_ms"), ["issued_ms"], unique=False)


_SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END",
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END",
]
_PG_TRIGGERS = [
    "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit is append-only'; END $$",
    "CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
]


def _audit_append_only() -> None:
    name = op.get_bind().dialect.name
    for sql in _PG_TRIGGERS if name == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(sql)


def downgrade() -> None:
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commands_issued_ms"))
        batch_op.drop_index(batch_op.f("ix_commands_incident_id"))

    op.drop_table("commands")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alarms_received_ms"))
        batch_op.drop_index(batch_op.f("ix_alarms_node_id"))
        batch_op.drop_index(batch_op.f("ix_alarms_incident_id"))

    op.drop_table("alarms")
    with op.batch_alter_table("troubles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_troubles_subject"))
        batch_op.drop_index(batch_op.f("ix_troubles_state"))

    op.drop_table("troubles")
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nodes_area"))

    op.drop_table("nodes")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_state"))
        batch_op.drop_index("ix_incidents_origin_opened")
        batch_op.drop_index(batch_op.f("ix_incidents_opened_ms"))

    op.drop_table("incidents")
    with op.batch_alter_table("command_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_command_results_cmd_id"))

    op.drop_table("command_results")
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_ts_ms"))
        batch_op.drop_index(batch_op.f("ix_audit_subject"))

    op.drop_table("audit")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    op.drop_table("areas")
