"""Duty officers: users, API tokens, console sessions, approvals, and composed alerts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ALERT_COLUMNS = (
    "review_reason",
    "submitted_at",
    "scheduled_for",
    "approvals_required",
    "created_by",
)


def upgrade() -> None:
    op.add_column(
        "alerts",
        sa.Column(
            "created_by", sa.Text(), nullable=True, comment="user who composed it; NULL for feeds"
        ),
    )
    op.add_column(
        "alerts",
        sa.Column(
            "approvals_required",
            sa.Integer(),
            nullable=True,
            comment="distinct approvals a composed alert needs, fixed when submitted",
        ),
    )
    op.add_column(
        "alerts",
        sa.Column("scheduled_for", _TS, nullable=True, comment="release time of a scheduled one"),
    )
    op.add_column("alerts", sa.Column("submitted_at", _TS, nullable=True))
    op.add_column(
        "alerts",
        sa.Column("review_reason", sa.Text(), nullable=True, comment="why it was rejected"),
    )
    op.create_table(
        "users",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, comment="login name, [a-z0-9._-]"),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column(
            "role", sa.String(16), nullable=False, comment="viewer, officer, approver or admin"
        ),
        sa.Column(
            "password_hash",
            sa.Text(),
            nullable=True,
            comment="argon2id; NULL: no console login",
        ),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("last_login_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            sa.BigInteger(),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_api_tokens_user_id_users"),
            nullable=False,
        ),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False, comment="at most the user's role"),
        sa.Column("token_hash", sa.String(64), nullable=False, comment="hex SHA-256 of the token"),
        sa.Column(
            "prefix", sa.String(16), nullable=False, comment="first characters, to recognise it"
        ),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_used_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "web_sessions",
        sa.Column(
            "id_hash", sa.String(64), nullable=False, comment="hex SHA-256 of the cookie value"
        ),
        sa.Column(
            "user_id",
            sa.BigInteger(),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_web_sessions_user_id_users"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_web_sessions"),
    )
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    op.create_table(
        "alert_approvals",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "alert_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "alerts.id", ondelete="CASCADE", name="fk_alert_approvals_alert_id_alerts"
            ),
            nullable=False,
        ),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False, comment="approve or reject"),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_approvals"),
        sa.UniqueConstraint("alert_id", "user_name", name="uq_alert_approvals_alert_id_user_name"),
    )


def downgrade() -> None:
    op.drop_table("alert_approvals")
    op.drop_index("ix_web_sessions_expires_at", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("api_tokens")
    op.drop_table("users")
    # Plain DROP COLUMN (SQLite 3.35 and later): rebuilding ``alerts`` in batch mode
    # would delete it first, and the foreign keys would cascade to every delivery.
    for column in _ALERT_COLUMNS:
        op.drop_column("alerts", column)
