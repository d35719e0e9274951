"""Bringing a database's schema up to date, without an alembic.ini.

The migration scripts ship inside the package, so a user runs
``alertcast db upgrade`` (or the service does it at start-up) from any
directory. Alembic is synchronous; it runs on the async connection through
``run_sync``, which hands it the underlying connection in the driver's own
context instead of blocking or nesting the event loop.

Two instances starting at once must not both create the tables: the whole
upgrade is one transaction, and it first takes a PostgreSQL advisory lock (on
SQLite, the ``BEGIN IMMEDIATE`` write lock does the same job).
"""

from __future__ import annotations

from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.errors import StoreError
from alertcast.store.engine import describe_error, make_engine, read_only, redact_url

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

MIGRATION_LOCK_KEY = 0x616C_6572_7463_0001
"""PostgreSQL advisory lock key held while migrating (``alertc`` + 1, as a bigint)."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    # ConfigParser interpolates '%', which may appear in an installation path.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of alertcast knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise StoreError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def _current_revision_sync(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade_sync(connection: Connection) -> str | None:
    command.upgrade(_config(connection), "head")
    return _current_revision_sync(connection)


async def upgrade(url: str) -> str:
    """Migrate the database at ``url`` to the newest revision and return that revision.

    Safe to call on every start: an up-to-date database is left as it is.
    Raises StoreError when the database cannot be reached or carries a revision
    this version does not know (it was migrated by a newer alertcast).
    """
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            before = await conn.run_sync(_current_revision_sync)
            revision = await conn.run_sync(_upgrade_sync)
    except CommandError as exc:
        raise StoreError(
            f"cannot migrate {redact_url(url)}: {exc} (was it migrated by a newer alertcast?)"
        ) from exc
    except (DBAPIError, OSError) as exc:
        raise StoreError(f"cannot migrate {redact_url(url)}: {describe_error(exc)}") from exc
    finally:
        await engine.dispose()
    if revision is None:
        raise StoreError(f"migrating {redact_url(url)} left no revision recorded")
    if before != revision:
        log.info("store.migrated", url=redact_url(url), from_revision=before, revision=revision)
    return revision


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    try:
        async with read_only(engine) as conn:
            return await conn.run_sync(_current_revision_sync)
    except (DBAPIError, OSError) as exc:
        raise StoreError(f"cannot read the schema revision: {describe_error(exc)}") from exc


async def is_current(engine: AsyncEngine) -> bool:
    """True when the schema is at the newest revision: what readiness probes ask."""
    return await current_revision(engine) == head_revision()
