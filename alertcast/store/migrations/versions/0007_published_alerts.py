"""Our own public CAP feed: the alerts published by a ``cap`` channel.

Only alerts listed here are served at ``/cap/{id}.xml``, ``/cap/index.atom``
and ``/alerts/{id}``; an alert reaches this table only through a delivery of
an approved route, so nothing unapproved is ever public.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "published_alerts",
        sa.Column(
            "alert_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "alerts.id", ondelete="CASCADE", name="fk_published_alerts_alert_id_alerts"
            ),
            nullable=False,
        ),
        sa.Column(
            "channel", sa.Text(), nullable=False, comment="the cap channel that published it"
        ),
        sa.Column("published_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_published_alerts"),
    )
    op.create_index("ix_published_alerts_published_at", "published_alerts", ["published_at"])


def downgrade() -> None:
    op.drop_index("ix_published_alerts_published_at", table_name="published_alerts")
    op.drop_table("published_alerts")
