"""Migrations: applied from the package, idempotent, serialized, matching the table definitions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.errors import StoreError
from alertcast.store.engine import make_engine
from alertcast.store.migrate import current_revision, head_revision, is_current, upgrade
from alertcast.store.tables import metadata


async def test_a_fresh_database_is_behind_until_upgraded(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert await current_revision(engine) is None
        assert not await is_current(engine)

        assert await upgrade(database_url) == head_revision()

        assert await current_revision(engine) == head_revision()
        assert await is_current(engine)
    finally:
        await engine.dispose()


async def test_upgrade_creates_the_tables_and_is_idempotent(database_url: str) -> None:
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        await audit.record(engine, actor="test", action="probe", subject="-", data={})
        assert await upgrade(database_url) == head_revision()
        assert await audit.count(engine) == 1

        def table_names(conn: Connection) -> set[str]:
            return set(inspect(conn).get_table_names())

        async with engine.connect() as conn:
            names = await conn.run_sync(table_names)
        assert {"alerts", "audit_log", "alembic_version"} <= names
    finally:
        await engine.dispose()


async def test_the_migrations_build_exactly_the_declared_tables(engine: AsyncEngine) -> None:
    def differences(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_instances_starting_together_migrate_once(database_url: str) -> None:
    revisions = await asyncio.gather(*(upgrade(database_url) for _ in range(4)))
    assert revisions == [head_revision()] * 4


async def test_a_database_from_a_newer_version_is_refused(
    engine: AsyncEngine, database_url: str
) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
    assert not await is_current(engine)
    with pytest.raises(StoreError, match="ffff_from_the_future"):
        await upgrade(database_url)


async def test_an_unmigrated_database_is_reported_as_such(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with pytest.raises(StoreError, match="db upgrade"):
            await audit.count(engine)
    finally:
        await engine.dispose()
