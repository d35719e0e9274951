"""Fan-out benchmark: the whole dispatch pipeline against the bare HTTP ceiling, same run.

    .venv/bin/python bench/fanout.py [--quick] [--latency-ms 20] [--concurrency 32]

Prints one JSON object::

    {"pipeline_per_s", "bare_per_s", "ratio", "pg_1_worker_per_s",
     "pg_2_workers_per_s", "apprise_per_s", "deliveries", ...}

A fake provider (aiohttp on 127.0.0.1, port 0, in its own process so the
clients' event loops do not slow it) answers every ``POST`` with 200 and
``{"id": "..."}`` after ``--latency-ms`` (20 ms). Then, one after the other,
``--count`` messages (100,000; ``--quick``: 10,000) go to it:

``pipeline_per_s``
    alertcast end to end in one process on SQLite (a temporary file): the
    rows are planned with :func:`alertcast.dispatch.ledger.plan`, then one
    :class:`alertcast.dispatch.worker.Worker` (``--concurrency`` sends at a
    time) claims, starts, sends through the webhook channel and records every
    row, audited. Rows per second from the worker's start until the ledger
    shows every row finished; the planning time is reported apart
    (``plan_s``). The rate limiter is real but generous, so it is not what
    limits.
``bare_per_s``
    the ceiling: a plain aiohttp loop posting the same JSON bodies with the
    same concurrency and connection pool, no database at all.
``ratio``
    ``pipeline_per_s / bare_per_s``: what the durable ledger costs.
``pg_1_worker_per_s``, ``pg_2_workers_per_s``
    the same pipeline on PostgreSQL (a database created for the run and
    dropped after; ``--pg-url``, by default ``ALERTCAST_TEST_POSTGRES_URL``),
    with one and with two worker processes (each with ``--concurrency``
    sends at a time), from the start signal until every row is finished;
    null without a PostgreSQL server.
``apprise_per_s``
    Apprise (when importable; null otherwise) notifying ``json://`` URLs of
    the same server with the same messages, ``--concurrency`` threads each
    calling ``notify``: a common library's speed, with no ledger.

``requests`` counts what the server received in each phase, so a duplicate
or a lost send shows there. The machine has few cores: the server process,
the database and the client share them, which is the point: the figures
compare on the same hardware.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import structlog  # noqa: E402
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web  # noqa: E402
from scale import MESSAGE, create_pg_database, drop_pg_database, store_alert  # noqa: E402

from alertcast.domain import Severity, Urgency  # noqa: E402
from alertcast.errors import Permanent, RateLimited, Transient  # noqa: E402
from alertcast.ports import OutboundMessage, Receipt  # noqa: E402
from alertcast.ratelimit import RateLimiter, RateLimits  # noqa: E402

log = structlog.get_logger("bench.fanout")

FULL = 100_000
QUICK = 10_000
CHANNEL = "hook"
BATCH_PER_CONCURRENCY = 4
"""Rows claimed per batch, as a multiple of the concurrency."""


# --------------------------------------------------------------------------- the fake provider


def _serve(latency_s: float, port_out: Any, ready: Any) -> None:
    counts: dict[str, int] = {}

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency_s)
        run = request.match_info["run"]
        counts[run] = counts.get(run, 0) + 1
        return web.json_response({"id": f"{run}-{counts[run]}"})

    async def count(request: web.Request) -> web.Response:
        return web.json_response(counts)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook/{run}", hook)
        app.router.add_post("/hook/{run}/{rest:.*}", hook)
        app.router.add_get("/counts", count)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_out.value = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


async def _server_counts(port: int) -> dict[str, int]:
    async with (
        ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/counts") as response,
    ):
        return dict(await response.json())


# --------------------------------------------------------------------------- the channel


class _LocalWebhook:
    """POSTs the message as JSON, as the webhook channel does (used where that is absent)."""

    kind = "webhook"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: bytes | None = None,
        session: ClientSession | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.url = url
        self._session = session or ClientSession(timeout=ClientTimeout(total=timeout_s))
        self._owned = session is None

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        body = {"target": target, **message.to_json()}
        async with self._session.post(self.url, json=body) as response:
            if response.status == 429:
                raise RateLimited("429", retry_after=1.0)
            if response.status >= 500:
                raise Transient(f"{response.status}")
            if response.status >= 400:
                raise Permanent(f"{response.status}")
            data = await response.json()
        return Receipt(provider_message_id=str(data.get("id")))

    async def aclose(self) -> None:
        if self._owned:
            await self._session.close()


def _webhook_class() -> tuple[Any, str]:
    try:
        from alertcast.channels.webhook import WebhookChannel
    except ImportError:
        return _LocalWebhook, "bench-local"
    return WebhookChannel, "alertcast.channels.webhook"


def _session(concurrency: int, *, tracked: bool = False) -> ClientSession:
    """A pool of ``concurrency`` connections; ``tracked`` adds what the webhook channel asks for."""
    trace_configs = []
    if tracked:
        with contextlib.suppress(ImportError):
            from alertcast.channels.webhook import send_tracking

            trace_configs.append(send_tracking())
    return ClientSession(
        connector=TCPConnector(limit=concurrency, limit_per_host=concurrency),
        timeout=ClientTimeout(total=30),
        trace_configs=trace_configs,
    )


# --------------------------------------------------------------------------- the pipeline


def _limiter() -> RateLimiter:
    return RateLimiter({CHANNEL: RateLimits(global_per_s=1_000_000.0, burst=1_000_000)})


def _worker(engine: Any, channel: Any, worker_id: str, concurrency: int) -> Any:
    from alertcast.dispatch.worker import Worker

    return Worker(
        engine,
        {CHANNEL: channel},
        _limiter(),
        worker_id,
        batch=concurrency * BATCH_PER_CONCURRENCY,
        concurrency=concurrency,
        poll_s=0.05,
    )


async def _plan(url: str, count: int, identifier: str) -> tuple[int, float]:
    from alertcast.dispatch import ledger
    from alertcast.store.engine import make_engine

    alert_id = await store_alert(url, identifier)
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        await ledger.plan(
            engine,
            alert_id=alert_id,
            channel=CHANNEL,
            targets=(f"+52155{i:08d}" for i in range(count)),
            message=MESSAGE,
            priority=ledger.priority_for(Severity.EXTREME, Urgency.IMMEDIATE),
            deadline=None,
        )
        return alert_id, time.perf_counter() - started
    finally:
        await engine.dispose()


async def _until_finished(engine: Any, alert_id: int, count: int, limit_s: float) -> None:
    """Return once no row is pending or claimed; check then that every row was sent.

    The poll counts through the claim index (state first), and polls less
    often while many rows are left, so that the watching does not load the
    database the workers use: 50 ms apart near the end, up to a second apart.
    """
    from sqlalchemy import func, select

    from alertcast.dispatch import ledger
    from alertcast.store.engine import read_only
    from alertcast.store.tables import deliveries

    open_rows = (
        select(func.count())
        .select_from(deliveries)
        .where(deliveries.c.state.in_(["pending", "claimed"]))
    )
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        async with read_only(engine) as conn:
            left = (await conn.execute(open_rows)).scalar_one()
        if left == 0:
            counts = await ledger.progress(engine, alert_id)
            if counts.get(CHANNEL, {}).get("sent", 0) != count:
                raise SystemExit(f"not every row was sent: {counts}")
            return
        await asyncio.sleep(min(1.0, max(0.05, left / 50_000)))
    raise SystemExit(f"the fan-out did not finish within {limit_s} s")


async def _pipeline_sqlite(port: int, count: int, concurrency: int) -> dict[str, float]:
    from alertcast.store.engine import make_engine

    webhook, _ = _webhook_class()
    with tempfile.TemporaryDirectory(prefix="alertcast-fanout-") as folder:
        url = f"sqlite:///{Path(folder) / 'fanout.db'}"
        alert_id, plan_s = await _plan(url, count, "FANOUT-SQLITE")
        engine = make_engine(url)
        session = _session(concurrency, tracked=True)
        channel = webhook(
            CHANNEL, f"http://127.0.0.1:{port}/hook/sqlite", secret=None, session=session
        )
        worker = _worker(engine, channel, "bench-sqlite", concurrency)
        stop = asyncio.Event()
        try:
            started = time.perf_counter()
            running = asyncio.create_task(worker.run(stop))
            await _until_finished(engine, alert_id, count, limit_s=3600)
            seconds = time.perf_counter() - started
            stop.set()
            await running
        finally:
            await channel.aclose()
            await session.close()
            await engine.dispose()
    return {"per_s": count / seconds, "plan_s": plan_s}


async def _worker_child(url: str, port: int, worker_id: str, concurrency: int) -> None:
    """One PostgreSQL worker process: ready, wait for ``go`` on stdin, work until SIGTERM."""
    from alertcast.store.engine import make_engine

    webhook, _ = _webhook_class()
    engine = make_engine(url)
    session = _session(concurrency, tracked=True)
    channel = webhook(
        CHANNEL, f"http://127.0.0.1:{port}/hook/{worker_id}", secret=None, session=session
    )
    worker = _worker(engine, channel, worker_id, concurrency)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    try:
        await worker.run(stop)
    finally:
        await channel.aclose()
        await session.close()
        await engine.dispose()


async def _pipeline_pg(
    admin_url: str, port: int, count: int, concurrency: int, workers: int
) -> dict[str, float]:
    from alertcast.store.engine import make_engine

    url, name = await create_pg_database(admin_url)
    processes: list[asyncio.subprocess.Process] = []
    try:
        alert_id, plan_s = await _plan(url, count, f"FANOUT-PG-{workers}")
        for n in range(workers):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SCRIPT),
                "--worker-child",
                url,
                str(port),
                f"pg{workers}-{n}",
                "--concurrency",
                str(concurrency),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                cwd=REPO,
            )
            processes.append(process)
        for process in processes:
            assert process.stdout is not None
            line = await process.stdout.readline()
            if line.strip() != b"ready":
                raise SystemExit("a worker process did not start")
        engine = make_engine(url)
        try:
            started = time.perf_counter()
            for process in processes:
                assert process.stdin is not None
                process.stdin.write(b"go\n")
                await process.stdin.drain()
            await _until_finished(engine, alert_id, count, limit_s=3600)
            seconds = time.perf_counter() - started
        finally:
            await engine.dispose()
        return {"per_s": count / seconds, "plan_s": plan_s}
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()
        await drop_pg_database(admin_url, name)


# --------------------------------------------------------------------------- the ceilings


async def _bare(port: int, count: int, concurrency: int) -> float:
    url = f"http://127.0.0.1:{port}/hook/bare"
    queue = iter(range(count))
    message = MESSAGE.to_json()

    async def sender(session: ClientSession) -> None:
        for i in queue:
            async with session.post(url, json={"target": f"+52155{i:08d}", **message}) as response:
                response.raise_for_status()
                await response.json()

    async with _session(concurrency) as session:
        started = time.perf_counter()
        await asyncio.gather(*(sender(session) for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def _apprise(port: int, count: int, concurrency: int) -> float | None:
    try:
        import apprise
    except ImportError:
        log.warning("bench.apprise_missing", hint="pip install apprise to compare")
        return None
    local = threading.local()
    failures = 0
    lock = threading.Lock()

    def send(i: int) -> None:
        nonlocal failures
        notifier = getattr(local, "notifier", None)
        if notifier is None:
            notifier = apprise.Apprise()
            notifier.add(f"json://127.0.0.1:{port}/hook/apprise")
            local.notifier = notifier
        if not notifier.notify(body=MESSAGE.parts[0], title=MESSAGE.subject or ""):
            with lock:
                failures += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(send, range(count)))
    seconds = time.perf_counter() - started
    if failures:
        log.warning("bench.apprise_failures", failures=failures)
    return (count - failures) / seconds


# --------------------------------------------------------------------------- main


async def main(options: argparse.Namespace) -> None:
    count = options.count or (QUICK if options.quick else FULL)
    concurrency = options.concurrency
    context = multiprocessing.get_context("spawn")
    port_value = context.Value("i", 0)
    ready = context.Event()
    server = context.Process(
        target=_serve, args=(options.latency_ms / 1000, port_value, ready), daemon=True
    )
    server.start()
    try:
        if not ready.wait(30):
            raise SystemExit("the fake provider did not start")
        port = int(port_value.value)
        _, channel_kind = _webhook_class()
        log.warning("bench.bare", count=count)
        bare = await _bare(port, count, concurrency)
        log.warning("bench.pipeline_sqlite", count=count)
        sqlite = await _pipeline_sqlite(port, count, concurrency)
        pg: dict[int, dict[str, float] | None] = {1: None, 2: None}
        if options.pg_url:
            for workers in (1, 2):
                log.warning("bench.pipeline_postgresql", count=count, workers=workers)
                pg[workers] = await _pipeline_pg(options.pg_url, port, count, concurrency, workers)
        apprise_count = min(count, options.apprise_count or count)
        log.warning("bench.apprise", count=apprise_count)
        apprise_per_s = await asyncio.to_thread(_apprise, port, apprise_count, concurrency)
        requests = await _server_counts(port)
    finally:
        server.kill()
        server.join()

    def rate(value: float | None) -> float | None:
        return round(value, 1) if value is not None else None

    pg1, pg2 = pg[1], pg[2]
    figures = {
        "pipeline_per_s": rate(sqlite["per_s"]),
        "bare_per_s": rate(bare),
        "ratio": round(sqlite["per_s"] / bare, 3),
        "pg_1_worker_per_s": rate(pg1["per_s"]) if pg1 else None,
        "pg_2_workers_per_s": rate(pg2["per_s"]) if pg2 else None,
        "apprise_per_s": rate(apprise_per_s),
        "deliveries": count,
        "apprise_messages": apprise_count if apprise_per_s is not None else None,
        "concurrency": concurrency,
        "latency_ms": options.latency_ms,
        "plan_s": {
            "sqlite": round(sqlite["plan_s"], 2),
            "postgresql": round(pg1["plan_s"], 2) if pg1 else None,
        },
        "channel": channel_kind,
        "requests": {
            "bare": requests.get("bare", 0),
            "sqlite": requests.get("sqlite", 0),
            "pg_1_worker": sum(v for k, v in requests.items() if k.startswith("pg1-")),
            "pg_2_workers": sum(v for k, v in requests.items() if k.startswith("pg2-")),
            "apprise": requests.get("apprise", 0),
        },
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK:,} messages instead")
    parser.add_argument("--count", type=int, default=0, help="messages per phase")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="the provider's latency")
    parser.add_argument("--concurrency", type=int, default=32, help="sends in flight per client")
    parser.add_argument(
        "--apprise-count", type=int, default=0, help="messages for Apprise (default: the same)"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("ALERTCAST_TEST_POSTGRES_URL"),
        help="PostgreSQL server (a database is created and dropped there)",
    )
    parser.add_argument(
        "--worker-child", nargs=3, metavar=("URL", "PORT", "ID"), help=argparse.SUPPRESS
    )
    options = parser.parse_args()
    from alertcast.log import configure_logging

    configure_logging("warning", "json")  # logs to stderr; stdout carries the JSON figures
    if options.worker_child:
        url, port, worker_id = options.worker_child
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_worker_child(url, int(port), worker_id, options.concurrency))
    else:
        asyncio.run(main(options))
