"""Subscribers (one person on one channel, address encrypted) and their answers to alerts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("channel", sa.Text(), nullable=False, comment="channel instance name"),
        sa.Column(
            "address_hash",
            sa.String(64),
            nullable=False,
            comment="HMAC-SHA256 (hex) of channel and normalised address",
        ),
        sa.Column(
            "address_enc",
            sa.LargeBinary(),
            nullable=False,
            comment="the address, AES-GCM encrypted",
        ),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("topics", sa.Text(), nullable=False, comment="JSON list of topic names"),
        sa.Column("areas", sa.Text(), nullable=False, comment="JSON list of catalogue area codes"),
        sa.Column("lat", sa.Double(), nullable=True, comment="latitude of a shared location"),
        sa.Column("lon", sa.Double(), nullable=True, comment="longitude of a shared location"),
        sa.Column("quiet_start", sa.String(5), nullable=True, comment="HH:MM local"),
        sa.Column("quiet_end", sa.String(5), nullable=True, comment="HH:MM local"),
        sa.Column(
            "quiet_tz", sa.Text(), nullable=True, comment="IANA time zone of the quiet hours"
        ),
        sa.Column(
            "active", sa.Boolean(), nullable=False, comment="false once the provider said gone"
        ),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("channel", "address_hash", name="uq_subscribers_channel_address_hash"),
    )
    op.create_index("ix_subscribers_channel_active", "subscribers", ["channel", "active"])
    op.create_table(
        "acknowledgements",
        sa.Column(
            "subscriber_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "subscribers.id",
                ondelete="CASCADE",
                name="fk_acknowledgements_subscriber_id_subscribers",
            ),
            nullable=False,
        ),
        sa.Column(
            "alert_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "alerts.id", ondelete="CASCADE", name="fk_acknowledgements_alert_id_alerts"
            ),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False, comment="safe or need_help"),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("subscriber_id", "alert_id", name="pk_acknowledgements"),
    )
    op.create_index("ix_acknowledgements_alert_id_kind", "acknowledgements", ["alert_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_acknowledgements_alert_id_kind", table_name="acknowledgements")
    op.drop_table("acknowledgements")
    op.drop_index("ix_subscribers_channel_active", table_name="subscribers")
    op.drop_table("subscribers")
