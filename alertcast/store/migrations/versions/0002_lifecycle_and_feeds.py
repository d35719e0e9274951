"""The CAP lifecycle (references, state, threads) and feed state (conditional GET, health).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger()


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column(
                "feed", sa.Text(), nullable=True, comment="name of the feed it came from, if any"
            )
        )
        batch.add_column(
            sa.Column(
                "thread",
                sa.Text(),
                nullable=True,
                comment="real-world thing it is about (road segment...)",
            )
        )
        batch.add_column(
            sa.Column(
                "state",
                sa.String(16),
                nullable=False,
                server_default="active",
                comment="active, cancelled, superseded, withdrawn or expired",
            )
        )
        batch.add_column(sa.Column("state_changed_at", _TS, nullable=True))
        batch.add_column(
            sa.Column("expires_at", _TS, nullable=True, comment="Alert.expires, for active queries")
        )
        batch.create_index("ix_alerts_feed_thread", ["feed", "thread"])
        batch.create_index("ix_alerts_state", ["state"])

    op.create_table(
        "alert_references",
        sa.Column(
            "alert_id",
            _ID,
            sa.ForeignKey(
                "alerts.id", ondelete="CASCADE", name="fk_alert_references_alert_id_alerts"
            ),
            nullable=False,
        ),
        sa.Column("ref_sender", sa.Text(), nullable=False),
        sa.Column("ref_identifier", sa.Text(), nullable=False),
        sa.Column("ref_sent_utc", _TS, nullable=False),
        sa.Column(
            "ref_alert_id",
            _ID,
            sa.ForeignKey(
                "alerts.id", ondelete="SET NULL", name="fk_alert_references_ref_alert_id_alerts"
            ),
            nullable=True,
            comment="the referenced alert once known; NULL while it was never seen",
        ),
        sa.PrimaryKeyConstraint(
            "alert_id", "ref_sender", "ref_identifier", "ref_sent_utc", name="pk_alert_references"
        ),
    )
    op.create_index(
        "ix_alert_references_target",
        "alert_references",
        ["ref_sender", "ref_identifier", "ref_sent_utc"],
    )

    op.create_table(
        "feed_state",
        sa.Column("feed", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("content_sha256", sa.String(64), nullable=True),
        sa.Column("last_attempt_at", _TS, nullable=True),
        sa.Column("last_success_at", _TS, nullable=True),
        sa.Column("last_change_at", _TS, nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("items_seen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("next_poll_at", _TS, nullable=True),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.PrimaryKeyConstraint("feed", name="pk_feed_state"),
    )

    op.create_table(
        "feed_entries",
        sa.Column("feed", sa.Text(), nullable=False),
        sa.Column(
            "entry_id", sa.Text(), nullable=False, comment="entry id, link or alert key as listed"
        ),
        sa.Column(
            "alert_id",
            _ID,
            sa.ForeignKey("alerts.id", ondelete="SET NULL", name="fk_feed_entries_alert_id_alerts"),
            nullable=True,
        ),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("content_sha256", sa.String(64), nullable=True),
        sa.Column("first_seen_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("gone_at", _TS, nullable=True, comment="when it left the index"),
        sa.PrimaryKeyConstraint("feed", "entry_id", name="pk_feed_entries"),
    )


def downgrade() -> None:
    op.drop_table("feed_entries")
    op.drop_table("feed_state")
    op.drop_index("ix_alert_references_target", table_name="alert_references")
    op.drop_table("alert_references")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_state")
        batch.drop_index("ix_alerts_feed_thread")
        for column in ("expires_at", "state_changed_at", "state", "thread", "feed"):
            batch.drop_column(column)
