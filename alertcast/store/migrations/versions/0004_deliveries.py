"""The delivery ledger and the shared rate budgets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "alert_id",
            sa.BigInteger(),
            sa.ForeignKey("alerts.id", ondelete="CASCADE", name="fk_deliveries_alert_id_alerts"),
            nullable=False,
        ),
        sa.Column("channel", sa.Text(), nullable=False, comment="channel instance name"),
        sa.Column("target", sa.Text(), nullable=False, comment="chat id, number, account or URL"),
        sa.Column(
            "group_key", sa.Text(), nullable=True, comment="shared per-group rate limit, if any"
        ),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("priority", sa.Integer(), nullable=False, comment="lower is sent sooner"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("deadline_at", _TS, nullable=True, comment="never sent after this (expiry)"),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column(
            "attempt_started_at",
            _TS,
            nullable=True,
            comment="set when the current attempt's send began; a cancel no longer applies",
        ),
        sa.Column("last_error_class", sa.String(32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider_message_id", sa.Text(), nullable=True),
        sa.Column(
            "payload", sa.Text(), nullable=False, comment="OutboundMessage as canonical JSON"
        ),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.UniqueConstraint(
            "alert_id", "channel", "target", name="uq_deliveries_alert_id_channel_target"
        ),
    )
    op.create_index("ix_deliveries_claim", "deliveries", ["state", "priority", "next_attempt_at"])
    op.create_table(
        "rate_budgets",
        sa.Column(
            "scope",
            sa.Text(),
            nullable=False,
            comment="channel, channel/recipient or channel/group",
        ),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("refreshed_at", _TS, nullable=False),
        sa.Column("paused_until", _TS, nullable=True),
        sa.PrimaryKeyConstraint("scope", name="pk_rate_budgets"),
    )


def downgrade() -> None:
    op.drop_table("rate_budgets")
    op.drop_index("ix_deliveries_claim", table_name="deliveries")
    op.drop_table("deliveries")
