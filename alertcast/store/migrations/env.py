"""Alembic environment for the alertcast store.

Normally run by :func:`alertcast.store.migrate.upgrade`, which opens the
connection itself (inside one transaction, with the migration lock held) and
passes it in ``config.attributes["connection"]``. Run by the ``alembic`` command
(for example to write a new revision), the URL comes from ``-x url=...`` or
``$ALERTCAST_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from alertcast.store.engine import make_engine, normalize_url
from alertcast.store.tables import metadata

config = context.config


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url_from_command_line() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "ALERTCAST_DATABASE_URL"
    )
    if not url:
        raise SystemExit("give the database with -x url=... or $ALERTCAST_DATABASE_URL")
    return url


async def _run_with_own_engine(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_configure_and_run)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=normalize_url(_url_from_command_line()),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
    else:
        asyncio.run(_run_with_own_engine(_url_from_command_line()))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
