"""Fixtures for the targeting tests: the demo catalogue and a subscriber store."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.areas import AreaCatalogue

DEMO_CATALOGUE = (
    Path(__file__).resolve().parents[2] / "alertcast" / "demo" / "areas" / "mx-demo.geojson"
)
TEST_SECRET = bytes(range(32))
"""A fixed subscriber key for tests (never a real one)."""


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
