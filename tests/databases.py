"""The migrated database engine every suite that touches the store starts from.

One definition, so that "a database at head" means the same thing in the
store, dispatch, feeds, web and officers tests alike; the root ``conftest``
turns it into the ``engine`` fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade


@asynccontextmanager
async def migrated_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the database at ``url``, migrated to head; disposed of afterwards."""
    await upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()
