"""The area catalogue: places people subscribe to by name, with their shapes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "areas",
        sa.Column(
            "code", sa.Text(), nullable=False, comment="SCHEME:value, e.g. INEGI_CVEGEO:09015"
        ),
        sa.Column("scheme", sa.String(32), nullable=False, comment="CAP geocode valueName"),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "name_folded", sa.Text(), nullable=False, comment="accent- and case-folded, for search"
        ),
        sa.Column("geometry", sa.LargeBinary(), nullable=False, comment="WKB, WGS 84 lon/lat"),
        sa.Column("min_lat", sa.Double(), nullable=False),
        sa.Column("min_lon", sa.Double(), nullable=False),
        sa.Column("max_lat", sa.Double(), nullable=False),
        sa.Column("max_lon", sa.Double(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False, comment="file name it was imported from"),
        sa.Column("imported_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_areas"),
    )
    op.create_index("ix_areas_scheme_value", "areas", ["scheme", "value"])


def downgrade() -> None:
    op.drop_index("ix_areas_scheme_value", table_name="areas")
    op.drop_table("areas")
