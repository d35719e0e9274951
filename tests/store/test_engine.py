"""URLs, redaction and the SQLite connection settings the store depends on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import structlog
from sqlalchemy import text

from alertcast.errors import StoreError
from alertcast.store.engine import make_engine, normalize_url, read_only, redact_url
from alertcast.store.migrate import upgrade


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/alertcast.db", "sqlite+aiosqlite:///data/alertcast.db"),
        ("sqlite:////var/lib/alertcast.db", "sqlite+aiosqlite:////var/lib/alertcast.db"),
        ("sqlite+aiosqlite:///a.db", "sqlite+aiosqlite:///a.db"),
        (
            "postgresql://u:pw@db.example:5432/alerts",
            "postgresql+asyncpg://u:pw@db.example:5432/alerts",
        ),
        ("postgres://u@db.example/alerts", "postgresql+asyncpg://u@db.example/alerts"),
        ("postgresql+asyncpg://u@db.example/alerts", "postgresql+asyncpg://u@db.example/alerts"),
        (
            "postgresql://u@db.example/alerts?sslmode=require",
            "postgresql+asyncpg://u@db.example/alerts?ssl=require",
        ),
    ],
)
def test_normalize_url_picks_the_async_driver(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:s3cret@db.example/alerts",
        "postgresql+psycopg2://u:s3cret@db.example/alerts",
        "sqlite+pysqlite:///a.db",
        "sqlite://",
        "sqlite:///:memory:",
        "not a url, u:s3cret@",
        "",
    ],
)
def test_normalize_url_refuses_other_databases_without_leaking_the_password(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        normalize_url(url)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://u:s3cret@db.example:5432/alerts",
            "postgresql://u:***@db.example:5432/alerts",
        ),
        ("postgresql://u@db.example/alerts", "postgresql://u@db.example/alerts"),
        (
            "postgresql://u@db.example/alerts?password=s3cret",
            "postgresql://u@db.example/alerts?password=***",
        ),
        ("sqlite:///data/alertcast.db", "sqlite:///data/alertcast.db"),
        ("weird//u:s3cret@host/x", "***"),
        ("nonsense", "nonsense"),
    ],
)
def test_redact_url_masks_passwords(given: str, expected: str) -> None:
    assert redact_url(given) == expected


async def test_failures_name_the_database_without_its_password() -> None:
    url = "postgresql://alertcast:s3cret@127.0.0.1:1/alertcast"  # nothing listens on port 1
    with structlog.testing.capture_logs() as logs:
        engine = make_engine(url)
        await engine.dispose()
        with pytest.raises(StoreError) as caught:
            await upgrade(url)
    assert "127.0.0.1" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert logs
    assert "s3cret" not in repr(logs)


async def test_sqlite_creates_the_parent_directory(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "deeper" / "alertcast.db"
    await upgrade(f"sqlite:///{database}")
    assert database.is_file()


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() >= 1000
    finally:
        await engine.dispose()


def _try_to_take_the_write_lock(path: Path) -> bool:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    else:
        other.execute("ROLLBACK")
        return True
    finally:
        other.close()


async def test_sqlite_transactions_take_the_write_lock_when_they_begin(tmp_path: Path) -> None:
    """A transaction that only read so far already holds the write lock (BEGIN IMMEDIATE),
    so it can never fail later when it writes; read-only connections do not take it."""
    path = tmp_path / "a.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        async with engine.connect() as conn:  # creates the file, in WAL mode
            await conn.execute(text("SELECT 1"))
        assert _try_to_take_the_write_lock(path)

        async with engine.begin() as conn:
            await conn.execute(text("SELECT 1"))
            assert not _try_to_take_the_write_lock(path)
        assert _try_to_take_the_write_lock(path)

        async with read_only(engine) as conn:
            await conn.execute(text("SELECT 1"))
            assert conn.in_transaction()
            assert _try_to_take_the_write_lock(path)
    finally:
        await engine.dispose()


async def test_sqlite_read_only_connections_read_while_a_writer_holds_the_lock(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    await upgrade(url)
    engine = make_engine(url)
    try:
        async with engine.begin() as writer:
            await writer.execute(text("SELECT 1"))
            async with read_only(engine) as reader:
                assert (
                    await reader.execute(text("SELECT count(*) FROM audit_log"))
                ).scalar_one() == 0
    finally:
        await engine.dispose()
