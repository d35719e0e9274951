"""Routing decisions kept per alert, and group states that turn a new alert into an update.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dispatch_decisions",
        sa.Column(
            "alert_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "alerts.id", ondelete="CASCADE", name="fk_dispatch_decisions_alert_id_alerts"
            ),
            nullable=False,
        ),
        sa.Column("decided_at", _TS, nullable=False),
        sa.Column("decision", sa.Text(), nullable=False, comment="the routing decision as JSON"),
        sa.PrimaryKeyConstraint("alert_id", name="pk_dispatch_decisions"),
    )
    op.create_table(
        "dispatch_routes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "alert_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "alerts.id", ondelete="CASCADE", name="fk_dispatch_routes_alert_id_alerts"
            ),
            nullable=False,
        ),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column(
            "state",
            sa.String(24),
            nullable=False,
            comment="awaiting_approval, deferred, planning, planned, rejected, failed",
        ),
        sa.Column("approval", sa.String(8), nullable=False, comment="auto, one or two"),
        sa.Column("decision", sa.Text(), nullable=False, comment="the routed delivery as JSON"),
        sa.Column("detail", sa.Text(), nullable=True, comment="why it failed, if it did"),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dispatch_routes"),
        sa.UniqueConstraint(
            "alert_id", "route", "channel", name="uq_dispatch_routes_alert_id_route_channel"
        ),
    )
    op.create_index("ix_dispatch_routes_state", "dispatch_routes", ["state"])
    op.create_table(
        "route_groups",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("first", sa.Text(), nullable=False, comment="key of the group's first alert"),
        sa.Column("last_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_route_groups"),
    )


def downgrade() -> None:
    op.drop_table("route_groups")
    op.drop_index("ix_dispatch_routes_state", table_name="dispatch_routes")
    op.drop_table("dispatch_routes")
    op.drop_table("dispatch_decisions")
