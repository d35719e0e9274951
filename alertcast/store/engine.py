"""Connecting to the database: one place that knows the two supported engines.

SQLite is the embedded default (a single file next to the data directory, no
server to run); PostgreSQL is for offices that already operate one. Both are
reached through async drivers so that the broadcaster never blocks its event
loop on I/O.

SQLite needs care to behave under concurrent writers. Each connection runs in
WAL mode (readers never block the writer), waits for a busy lock instead of
failing at once, enforces foreign keys, and starts every write transaction with
``BEGIN IMMEDIATE``: the write lock is taken at the start, so a transaction
that reads and then writes (the audit trail reads its last record before
appending) can never fail half-way with "database is locked" while upgrading a
read lock. Reads that must not queue behind writers use :func:`read_only`,
which starts a plain deferred ``BEGIN`` instead.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import structlog
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from alertcast.errors import StoreError

log = structlog.get_logger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for the write lock before giving up.

Generous on purpose: writers queue behind each other (BEGIN IMMEDIATE), and a
burst of alerts must wait its turn rather than be dropped.
"""

POSTGRES_POOL_SIZE = 5
POSTGRES_MAX_OVERFLOW = 10
POSTGRES_POOL_RECYCLE_S = 1800
"""Recycle server connections now and then so that a restarted or failed-over
server, or a proxy that drops idle sessions, does not leave dead ones in the pool."""

READ_ONLY_OPTION = "alertcast_read_only"
"""Execution option marking a connection whose transactions only read.

On SQLite such a transaction starts with a deferred ``BEGIN`` (a WAL snapshot
that does not take the write lock); on PostgreSQL it is ``READ ONLY``.
"""

_SQLITE_DRIVERS = {"sqlite", "sqlite+aiosqlite"}
_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+asyncpg"}
_SECRET_QUERY_KEYS = re.compile(r"(password|passwd|secret|token|key)", re.IGNORECASE)
_MASK = "***"
_MISSING_TABLE = re.compile(r"no such table|relation .* does not exist", re.IGNORECASE)


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise StoreError(
            f"{redact_url(url)!r} is not a database URL; use sqlite:///path/to/file.db "
            "or postgresql://user@host:5432/dbname"
        ) from None


def normalize_url(url: str) -> str:
    """Return ``url`` in the async-driver form the engine needs.

    People write URLs the way their other tools want them (``postgres://`` from
    a hosting provider, ``sqlite:///`` from the docs); the store accepts those and
    picks the driver itself so that configuration never has to name one.
    libpq's ``sslmode`` query parameter is passed to asyncpg as ``ssl``, which
    takes the same values.

    Raises StoreError for any other scheme or driver, and for in-memory SQLite:
    every migration and every engine would see a different, empty database.
    """
    parsed = _parse(url)
    driver = parsed.drivername.lower()
    if driver in _SQLITE_DRIVERS:
        in_memory = parsed.database in (None, "", ":memory:") or "memory" in (
            parsed.query.get("mode"),
            parsed.database,
        )
        if in_memory:
            raise StoreError(
                "in-memory SQLite is not supported (each connection would see another, empty "
                "database); give a file path such as sqlite:///data/alertcast.db"
            )
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif driver in _POSTGRES_DRIVERS:
        parsed = parsed.set(drivername="postgresql+asyncpg")
        query = dict(parsed.query)
        if "sslmode" in query:
            sslmode = query.pop("sslmode")
            query.setdefault("ssl", sslmode)
            parsed = parsed.set(query=query)
    else:
        raise StoreError(
            f"unsupported database URL scheme {parsed.drivername!r} in {redact_url(url)!r}: "
            "use sqlite:///path/to/file.db or postgresql://user@host:5432/dbname"
        )
    return parsed.render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """``url`` with any password (in the user part or the query string) replaced by ``***``.

    Safe to call on anything, including text that is not a valid URL, because
    it is used when reporting that a URL is wrong: such text is shown only when
    it has no user part and no secret-looking parameter.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        return _MASK if "@" in url or _SECRET_QUERY_KEYS.search(url) else url
    query = parsed.query
    rendered = parsed.set(query={}).render_as_string(hide_password=True)
    if not query:
        return rendered
    pairs = [
        f"{quote_plus(key)}={_MASK if _SECRET_QUERY_KEYS.search(key) else quote_plus(value)}"
        for key, values in query.items()
        for value in ((values,) if isinstance(values, str) else values)
    ]
    return f"{rendered}?{'&'.join(pairs)}"


def make_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``, configured for safe concurrent use.

    For SQLite the parent directory of the database file is created, so that a
    fresh installation works without a setup step.
    """
    normalized = normalize_url(url)
    parsed = _parse(normalized)
    if parsed.get_backend_name() == "sqlite":
        engine = _make_sqlite_engine(parsed)
    else:
        engine = create_async_engine(
            parsed,
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=POSTGRES_MAX_OVERFLOW,
            pool_recycle=POSTGRES_POOL_RECYCLE_S,
            pool_pre_ping=True,
            connect_args={"server_settings": {"application_name": "alertcast"}},
        )
    log.debug("store.engine_created", url=redact_url(url), dialect=engine.dialect.name)
    return engine


_WAL_ATTEMPTS = 50


def _set_wal(cursor: Any) -> None:
    """Switch the database to WAL, waiting out another connection that holds a lock.

    SQLite answers a journal-mode change with "database is locked" at once,
    without its busy handler, while another connection is writing; that
    happens when several instances start together on a new database. The
    switch is retried a few times (a short blocking pause: it only ever
    happens while connecting, and WAL, once set, stays set in the file).
    """
    for attempt in range(_WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:  # the driver's OperationalError, wrapped by the adapter
            if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.02 * (attempt + 1))


def _make_sqlite_engine(parsed: URL) -> AsyncEngine:
    database = parsed.database or ""
    if not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    # The documented SQLAlchemy recipe for taking transaction control away
    # from the sqlite3 driver (which would otherwise issue a deferred BEGIN
    # only before DML) so that the BEGIN below is the one that counts.
    # ``synchronous`` stays at its default, FULL: a committed audit record must
    # survive a power cut, and alert volumes never make that the bottleneck.
    @event.listens_for(engine.sync_engine, "connect")
    def _configure_connection(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            _set_wal(cursor)
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_read_only(conn: AsyncConnection) -> bool:
    """True when ``conn`` was opened by :func:`read_only`."""
    sync_connection = conn.sync_connection
    if sync_connection is None:  # not started yet, so no options set either
        return False
    return bool(sync_connection.get_execution_options().get(READ_ONLY_OPTION))


@asynccontextmanager
async def read_only(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection whose transaction only reads and never waits for writers.

    Queries, exports and chain verification use this so that, on SQLite, they
    read a consistent snapshot without taking the write lock that every other
    transaction starts with.
    """
    async with engine.connect() as conn:
        options: dict[str, Any] = {READ_ONLY_OPTION: True}
        if conn.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        await conn.execution_options(**options)
        yield conn


@contextmanager
def database_errors(doing: str) -> Iterator[None]:
    """Turn driver errors raised while ``doing`` something into StoreError.

    Callers then handle one documented error class whatever the database;
    the message keeps the driver's first line (never the URL) and says when the
    likely cause is a schema that was never migrated.
    """
    try:
        yield
    except (DBAPIError, OSError) as exc:
        reason = describe_error(exc)
        if _MISSING_TABLE.search(reason):
            reason += " (run 'alertcast db upgrade' to create the tables)"
        raise StoreError(f"{doing}: {reason}") from exc


def describe_error(exc: BaseException) -> str:
    """The driver's own first line, without the SQL and parameters SQLAlchemy appends."""
    original = getattr(exc, "orig", None)
    lines = str(original if original is not None else exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
