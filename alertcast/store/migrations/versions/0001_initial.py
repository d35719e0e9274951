"""Initial schema: received alerts and the audit trail.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("sent", sa.String(64), nullable=False, comment="CAP sent text, with its offset"),
        sa.Column("sent_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("msg_type", sa.String(16), nullable=False),
        sa.Column("cap_version", sa.String(8), nullable=False),
        sa.Column("source", sa.Text(), nullable=False, comment="feed name or user it came from"),
        sa.Column("raw", sa.LargeBinary(), nullable=True, comment="the document as received"),
        sa.Column("normalized", sa.Text(), nullable=False, comment="alert_to_json, canonical JSON"),
        sa.Column("warnings", sa.Text(), nullable=False, comment="JSON list of parser warnings"),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint(
            "sender", "identifier", "sent_utc", name=op.f("uq_alerts_sender_identifier_sent_utc")
        ),
    )
    op.create_index("ix_alerts_sent_utc", "alerts", ["sent_utc"])

    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False, comment="ISO-8601 UTC text, as hashed"),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False, comment="canonical JSON text, as hashed"),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_subject", "audit_log", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_subject", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_alerts_sent_utc", table_name="alerts")
    op.drop_table("alerts")
