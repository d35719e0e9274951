"""Planning benchmark: a million deliveries into the ledger, on SQLite and on PostgreSQL.

    .venv/bin/python bench/scale.py [--quick] [--pg-url postgresql://...] [--count N]

Prints one JSON object::

    {"sqlite": {"deliveries", "seconds", "per_s", "peak_rss_mb", "rss_before_plan_mb"},
     "postgresql": {...} or null}

Each engine plans ``--count`` deliveries (1,000,000; ``--quick``: 100,000)
of one alert on one channel with :func:`alertcast.dispatch.ledger.plan`, the
targets streamed from a generator, into a fresh database: a temporary SQLite
file, and a PostgreSQL database created for the run and dropped after it
(``--pg-url`` names the server, by default ``ALERTCAST_TEST_POSTGRES_URL``;
without either PostgreSQL is skipped and reported null).

``seconds`` is the wall time of ``plan`` alone. Planning runs in a child
process (the parent migrates the database and stores the alert first), so
``peak_rss_mb`` is the planner's own peak resident memory, read from
``wait4``; ``rss_before_plan_mb`` is the same child's peak just before it
started planning (the interpreter, SQLAlchemy and the drivers), so the
difference is what planning itself held. Streaming should keep that
difference flat whatever the count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import structlog  # noqa: E402

from alertcast.domain import (  # noqa: E402
    Alert,
    Category,
    Certainty,
    Info,
    MsgType,
    Scope,
    Severity,
    Status,
    Urgency,
)
from alertcast.ports import OutboundMessage  # noqa: E402

log = structlog.get_logger("bench.scale")

FULL = 1_000_000
QUICK = 100_000
SENDER = "bench@alertcast.invalid"

MESSAGE = OutboundMessage(
    parts=(
        "ALERTA SISMICA: sismo fuerte en la costa de Guerrero. Aléjese de ventanas, "
        "protéjase bajo una mesa resistente y no use elevadores. Siga las indicaciones "
        "de Protección Civil: https://example.invalid/a/1",
    ),
    subject="Sismo fuerte",
    language="es-MX",
    severity="Extreme",
)
"""A realistic one-part SMS-sized message: what every row of the fan-out carries."""


def bench_alert(identifier: str) -> Alert:
    """An Extreme earthquake alert in force for a day: what the fan-out belongs to."""
    sent = datetime.now(UTC).replace(microsecond=0)
    info = Info(
        categories=(Category.GEO,),
        event="Sismo",
        urgency=Urgency.IMMEDIATE,
        severity=Severity.EXTREME,
        certainty=Certainty.OBSERVED,
        language="es-MX",
        headline=f"Sismo {identifier}",
        expires=sent + timedelta(days=1),
    )
    return Alert(
        identifier=identifier,
        sender=SENDER,
        sent=sent,
        status=Status.ACTUAL,
        msg_type=MsgType.ALERT,
        scope=Scope.PUBLIC,
        infos=(info,),
    )


async def store_alert(url: str, identifier: str) -> int:
    """Migrate ``url`` to head and store one alert; return its id."""
    from alertcast import lifecycle
    from alertcast.store.engine import make_engine
    from alertcast.store.migrate import upgrade

    await upgrade(url)
    engine = make_engine(url)
    try:
        stored = await lifecycle.ingest_alert(
            engine,
            bench_alert(identifier),
            raw=None,
            source="bench",
            actor="bench",
            now=datetime.now(UTC),
        )
        return stored.result.alert_id
    finally:
        await engine.dispose()


async def create_pg_database(admin_url: str) -> tuple[str, str]:
    """A throwaway PostgreSQL database on the server of ``admin_url``: (its URL, its name)."""
    import asyncpg

    name = f"alertcast_bench_{uuid.uuid4().hex[:12]}"
    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{name}", name


async def drop_pg_database(admin_url: str, name: str) -> None:
    import asyncpg

    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def targets(count: int) -> Any:
    """Phone numbers, made one at a time: nothing holds the whole list."""
    for i in range(count):
        yield f"+52155{i:08d}"


# --------------------------------------------------------------------------- child


async def _plan_child(url: str, alert_id: int, count: int, batch: int) -> dict[str, float]:
    from alertcast.dispatch import ledger
    from alertcast.store.engine import make_engine

    engine = make_engine(url)
    try:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        result = await ledger.plan(
            engine,
            alert_id=alert_id,
            channel="sms",
            targets=targets(count),
            message=MESSAGE,
            priority=ledger.priority_for(Severity.EXTREME, Urgency.IMMEDIATE),
            deadline=None,
            batch=batch,
        )
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    if result.inserted != count:
        raise SystemExit(f"planned {result.inserted} rows, expected {count}")
    return {"seconds": seconds, "rss_before_plan_mb": before}


def _run_child(url: str, alert_id: int, count: int, batch: int) -> dict[str, Any]:
    """Plan in a child process; its figures plus its own peak RSS from wait4."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            url,
            str(alert_id),
            "--count",
            str(count),
            "--batch",
            str(batch),
        ],
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"the planning child failed with {process.returncode}")
    figures = json.loads(output)
    return {
        "deliveries": count,
        "seconds": round(figures["seconds"], 2),
        "per_s": round(count / figures["seconds"]),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "rss_before_plan_mb": round(figures["rss_before_plan_mb"], 1),
    }


# --------------------------------------------------------------------------- engines


async def _sqlite(count: int, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="alertcast-scale-") as folder:
        url = f"sqlite:///{Path(folder) / 'scale.db'}"
        alert_id = await store_alert(url, "SCALE-SQLITE")
        log.info("bench.planning", engine="sqlite", count=count)
        return await asyncio.to_thread(_run_child, url, alert_id, count, batch)


async def _postgresql(admin_url: str, count: int, batch: int) -> dict[str, Any]:
    url, name = await create_pg_database(admin_url)
    try:
        alert_id = await store_alert(url, "SCALE-PG")
        log.info("bench.planning", engine="postgresql", count=count)
        return await asyncio.to_thread(_run_child, url, alert_id, count, batch)
    finally:
        await drop_pg_database(admin_url, name)


async def main(options: argparse.Namespace) -> None:
    count = options.count or (QUICK if options.quick else FULL)
    figures: dict[str, Any] = {"sqlite": await _sqlite(count, options.batch), "postgresql": None}
    if options.pg_url:
        figures["postgresql"] = await _postgresql(options.pg_url, count, options.batch)
    else:
        log.warning("bench.no_postgresql", hint="set ALERTCAST_TEST_POSTGRES_URL or --pg-url")
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"plan {QUICK:,} instead")
    parser.add_argument("--count", type=int, default=0, help="deliveries per engine")
    parser.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("ALERTCAST_TEST_POSTGRES_URL"),
        help="PostgreSQL server (a database is created and dropped there)",
    )
    parser.add_argument("--child", nargs=2, metavar=("URL", "ALERT_ID"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    from alertcast.log import configure_logging

    configure_logging("warning", "json")  # logs to stderr; stdout carries the JSON figures
    if options.child:
        url, alert_id = options.child
        result = asyncio.run(_plan_child(url, int(alert_id), options.count, options.batch))
        print(json.dumps(result))
    else:
        asyncio.run(main(options))
