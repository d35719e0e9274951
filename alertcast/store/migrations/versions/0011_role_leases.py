"""Role leases: which instance runs a part that must run on one instance only.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "role_leases",
        sa.Column("name", sa.Text(), nullable=False, comment="e.g. bot:{channel}"),
        sa.Column(
            "owner", sa.Text(), nullable=True, comment="instance holding it; NULL when released"
        ),
        sa.Column("acquired_at", _TS, nullable=False, comment="when the owner took it"),
        sa.Column("renewed_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False, comment="free for anyone after this"),
        sa.PrimaryKeyConstraint("name", name="pk_role_leases"),
    )


def downgrade() -> None:
    op.drop_table("role_leases")
