"""Fixtures for the targeting tests: a migrated engine, the demo catalogue, a subscriber store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.areas import AreaCatalogue
from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade

DEMO_CATALOGUE = (
    Path(__file__).resolve().parents[2] / "alertcast" / "demo" / "areas" / "mx-demo.geojson"
)
TEST_SECRET = bytes(range(32))
"""A fixed subscriber key for tests (never a real one)."""


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh database migrated to head (SQLite and PostgreSQL)."""
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def catalogue(engine: AsyncEngine) -> AreaCatalogue:
    """The demo catalogue (CDMX alcaldías and Estado de México municipios), imported."""
    areas = AreaCatalogue(engine)
    await areas.import_geojson(
        DEMO_CATALOGUE,
        scheme="INEGI_CVEGEO",
        code_field="CVEGEO",
        name_field="NOMGEO",
        actor="test",
    )
    return areas
