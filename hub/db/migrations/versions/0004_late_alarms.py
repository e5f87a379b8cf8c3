"""Late alarms: alarms.late and incidents.late.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

An alarm older than `alarm_max_age_s` when it reaches the hub (held far too long in
a node's outbox) is stored and shown, but sounds nothing (hub.freshness); its
incident is late too, so the dashboard shows a badge and escalation skips it.
Plain ADD COLUMN (no table rebuild): the event triggers of 0002 stay in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("alarms", "incidents"):
        op.add_column(table, sa.Column("late", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))


def downgrade() -> None:
    for table in ("incidents", "alarms"):
        op.drop_column(table, "late")
