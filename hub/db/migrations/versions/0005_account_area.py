"""Accounts limited to an area: users.area and api_tokens.area.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

An area path of the registry (NULL: the whole hub). A user or API token with an area
sees and acts only inside that subtree (hub/api/scope.py, docs/security.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("area", sa.String(length=260), nullable=True))
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("area", sa.String(length=260), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("area")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("area")
