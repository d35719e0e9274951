"""Fixtures for the preview tests: a migrated engine on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.officers.service_files import migrated_engine


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh database migrated to head (SQLite and PostgreSQL)."""
    async with migrated_engine(database_url) as engine:
        yield engine
