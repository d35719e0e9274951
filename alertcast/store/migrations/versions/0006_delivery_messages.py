"""Each rendered message stored once, and delivery rows pointing at it instead of a copy each.

A fan-out to a million recipients carries one message; keeping a copy of it
in every row made planning write, and every claim read, the same text a
million times. The claim index also gains ``id``, the last key of the
claiming order, so that a claim reads the first rows in order from the index
instead of sorting every due row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)

_deliveries = sa.table(
    "deliveries",
    sa.column("id", sa.BigInteger()),
    sa.column("payload", sa.Text()),
    sa.column("message_id", sa.BigInteger()),
)
_messages = sa.table(
    "delivery_messages",
    sa.column("id", sa.BigInteger()),
    sa.column("sha256", sa.String(64)),
    sa.column("payload", sa.Text()),
    sa.column("created_at", _TS),
)


def _naive_on_sqlite(at: datetime) -> datetime:
    return at.replace(tzinfo=None) if op.get_bind().dialect.name == "sqlite" else at


def upgrade() -> None:
    op.create_table(
        "delivery_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("sha256", sa.String(64), nullable=False, comment="hex SHA-256 of payload"),
        sa.Column(
            "payload", sa.Text(), nullable=False, comment="OutboundMessage as canonical JSON"
        ),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_messages"),
        sa.UniqueConstraint("sha256", name="uq_delivery_messages_sha256"),
    )
    op.add_column(
        "deliveries",
        sa.Column(
            "message_id",
            sa.BigInteger(),
            nullable=True,
            comment="the rendered message, stored once in delivery_messages",
        ),
    )
    bind = op.get_bind()
    now = _naive_on_sqlite(datetime.now(UTC))
    payloads = bind.execute(sa.select(_deliveries.c.payload).distinct()).scalars().all()
    for payload in payloads:
        digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()
        message_id = bind.execute(
            _messages.insert()
            .values(sha256=digest, payload=payload, created_at=now)
            .returning(_messages.c.id)
        ).scalar_one()
        bind.execute(
            _deliveries.update()
            .where(_deliveries.c.payload == payload)
            .values(message_id=message_id)
        )
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column(
            "message_id",
            existing_type=sa.BigInteger(),
            nullable=False,
            existing_comment="the rendered message, stored once in delivery_messages",
        )
        batch.create_foreign_key(
            "fk_deliveries_message_id_delivery_messages",
            "delivery_messages",
            ["message_id"],
            ["id"],
        )
        batch.drop_column("payload")
    op.drop_index("ix_deliveries_claim", table_name="deliveries")
    op.create_index(
        "ix_deliveries_claim", "deliveries", ["state", "priority", "next_attempt_at", "id"]
    )
    op.add_column(
        "deliveries",
        sa.Column(
            "unknown_attempts",
            sa.Integer(),
            nullable=False,
            server_default="0",
            comment="attempts whose outcome was ambiguous (may have been received)",
        ),
    )
    op.create_index(
        "ix_deliveries_channel_provider_message_id",
        "deliveries",
        ["channel", "provider_message_id"],
    )
    op.create_table(
        "early_receipts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("provider_message_id", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("received_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_early_receipts"),
    )
    op.create_index(
        "ix_early_receipts_channel_provider_message_id",
        "early_receipts",
        ["channel", "provider_message_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_early_receipts_channel_provider_message_id", table_name="early_receipts")
    op.drop_table("early_receipts")
    op.drop_index("ix_deliveries_channel_provider_message_id", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("unknown_attempts")
    op.drop_index("ix_deliveries_claim", table_name="deliveries")
    op.create_index("ix_deliveries_claim", "deliveries", ["state", "priority", "next_attempt_at"])
    op.add_column(
        "deliveries",
        sa.Column("payload", sa.Text(), nullable=True, comment="OutboundMessage as canonical JSON"),
    )
    bind = op.get_bind()
    for message_id, payload in bind.execute(sa.select(_messages.c.id, _messages.c.payload)):
        bind.execute(
            _deliveries.update()
            .where(_deliveries.c.message_id == message_id)
            .values(payload=payload)
        )
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column(
            "payload",
            existing_type=sa.Text(),
            nullable=False,
            existing_comment="OutboundMessage as canonical JSON",
        )
        batch.drop_constraint("fk_deliveries_message_id_delivery_messages", type_="foreignkey")
        batch.drop_column("message_id")
    op.drop_table("delivery_messages")
