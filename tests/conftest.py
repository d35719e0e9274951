"""Shared fixtures: the public corpus, the two databases and an engine on them.

Tests that read ``../shared/corpus`` skip where it is absent (a user's clone)
and fail where ``ALERTCAST_REQUIRE_CORPUS=1`` (CI). Tests that need PostgreSQL
read ``ALERTCAST_TEST_POSTGRES_URL``; without it they skip with that reason, and
CI sets it, so there they run or fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.databases import migrated_engine

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _logs_to_stderr() -> None:
    """Logs go to stderr at debug level in every test, whatever an earlier test configured."""
    from alertcast.log import configure_logging

    configure_logging("debug", "json")


def _corpus_path() -> Path:
    override = os.environ.get("ALERTCAST_CORPUS")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The public samples; skipped where absent, required where ALERTCAST_REQUIRE_CORPUS=1."""
    path = _corpus_path()
    if not (path / "SOURCES.md").is_file():
        if os.environ.get("ALERTCAST_REQUIRE_CORPUS") == "1":
            pytest.fail(f"ALERTCAST_REQUIRE_CORPUS=1 but the corpus is missing at {path}")
        pytest.skip(
            f"the public corpus is not at {path} (set ALERTCAST_CORPUS to use one elsewhere)"
        )
    return path


def corpus_files(subdir: str, *suffixes: str) -> list[Path]:
    """Corpus files for parametrizing at collection time ([] where the corpus is absent)."""
    folder = _corpus_path() / subdir
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not suffixes or p.suffix.lower() in suffixes)


def postgres_admin_url() -> str | None:
    return os.environ.get("ALERTCAST_TEST_POSTGRES_URL") or None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server the tests may use; skip with a reason when none is configured."""
    url = postgres_admin_url()
    if url is None:
        pytest.skip(
            "PostgreSQL tests need ALERTCAST_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    return url


async def _create_database(admin_url: str) -> tuple[str, str]:
    """Create a throwaway database; return (its URL, its name)."""
    import asyncpg  # imported here so that SQLite-only runs need no server

    name = f"alertcast_test_{uuid.uuid4().hex[:12]}"
    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{name}", name


async def _drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def pg_database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test (URL form ``postgresql://...``)."""
    url, name = await _create_database(postgres_url)
    try:
        yield url
    finally:
        await _drop_database(postgres_url, name)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind: the same store tests run on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alertcast.db'}"
        return
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(
            "PostgreSQL tests need ALERTCAST_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    url, name = await _create_database(admin)
    try:
        yield url
    finally:
        await _drop_database(admin, name)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh database of each kind, migrated to head (SQLite and PostgreSQL)."""
    async with migrated_engine(database_url) as engine:
        yield engine
