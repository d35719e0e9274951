"""Ingest benchmark: parsing per feed kind, publish-to-stored latency, idle polling cost.

    .venv/bin/python bench/ingest.py [--quick]

Prints one JSON object:

``parse_alerts_per_s``
    per feed kind, alerts read per second from the public corpus files of that
    kind (``$ALERTCAST_CORPUS`` or ``../shared/corpus``), each kind's parser
    run repeatedly for a fixed time; documents a kind refuses are left out.
``publish_to_stored_ms_p50`` / ``publish_to_stored_ms_p99``
    200 feeds on a 1-second interval served by a local feed server; new
    alerts are published on random feeds while the poller runs. For each,
    the time from the start of the poll that fetched the new version to the
    alert being stored (fetch, parse in a thread, lifecycle, audit, commit):
    processing only, the wait for that poll excluded.
``idle_1000_feeds_cpu_percent``
    1,000 feeds on a 60-second interval answered with 304 Not Modified, as in
    a service that has run for a while (each feed holds the server's ETag and
    the feeds' next polls are spread over the interval): the process CPU time
    (``time.process_time``: the event loop and the SQLite worker thread) over
    one whole interval, in percent of one core. The feed server runs in
    another process, so its own work is not counted.
    ``idle_feeds_polled_in_window`` says how many feeds polled in it.

All feeds of the benchmark live on one local server, so the HTTP session is
given more connections per host than the service's default (8), which is
meant for many feeds spread over many issuers. SQLite (WAL, synchronous FULL)
in a temporary folder is the store, as in the embedded deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alertcast.config import FeedConfig  # noqa: E402
from alertcast.errors import FeedError  # noqa: E402
from alertcast.feeds.base import FeedItem  # noqa: E402
from alertcast.feeds.http import FetchResult, HttpFetcher, make_session  # noqa: E402
from alertcast.feeds.poller import Poller  # noqa: E402
from alertcast.feeds.registry import detect_kind, parser_for  # noqa: E402
from alertcast.ingest import Ingestor, ItemOutcome  # noqa: E402
from alertcast.store.alerts import AlertRepository  # noqa: E402
from alertcast.store.engine import make_engine  # noqa: E402
from alertcast.store.feed_state import FeedStateRepository  # noqa: E402
from alertcast.store.migrate import upgrade  # noqa: E402
from alertcast.store.tables import feed_state  # noqa: E402

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"


def corpus_path() -> Path:
    override = os.environ.get("ALERTCAST_CORPUS")
    return Path(override) if override else REPO.parent / "shared" / "corpus"


def feed(name: str, kind: str, url: str | None = None, **options: Any) -> FeedConfig:
    return FeedConfig(name=name, kind=kind, file=Path(f"feeds/{name}.toml"), url=url, **options)


# --------------------------------------------------------------------------- parsing


def bench_parse(corpus: Path, seconds_per_kind: float) -> dict[str, float]:
    """Alerts per second per kind over the corpus files each kind reads."""
    by_kind: dict[str, list[bytes]] = {}
    for folder in ("cap", "index", "health", "road"):
        for path in sorted((corpus / folder).iterdir()):
            data = path.read_bytes()
            try:
                kind = detect_kind(data)
            except FeedError:
                continue
            by_kind.setdefault(kind, []).append(data)
    config = {
        "open511": feed("bench", "open511", mapping={"timezone": "America/Vancouver"}),
        "road-text": feed("bench", "road-text"),
    }
    result: dict[str, float] = {}
    for kind in sorted(by_kind):
        parser = parser_for(kind)
        settings = config.get(kind, feed("bench", kind, max_bytes=5 * 1024 * 1024))
        readable = []
        for data in by_kind[kind]:
            try:
                batch = parser.parse(data, settings)
            except FeedError:
                continue
            if batch.items:
                readable.append((data, len(batch.items)))
        if not readable:
            continue
        alerts = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds_per_kind:
            for data, count in readable:
                parser.parse(data, settings)
                alerts += count
        result[kind] = round(alerts / (time.perf_counter() - start), 1)
    return result


# --------------------------------------------------------------------------- documents


def cap_alert(identifier: str, sent: str) -> str:
    return (
        f'<alert xmlns="{CAP_NS}"><identifier>{identifier}</identifier>'
        f"<sender>bench@alertcast.invalid</sender><sent>{sent}</sent>"
        "<status>Exercise</status><msgType>Alert</msgType><scope>Public</scope>"
        "<info><language>es-MX</language><category>Met</category><event>Lluvias</event>"
        "<urgency>Expected</urgency><severity>Moderate</severity><certainty>Likely</certainty>"
        "<expires>2099-01-01T00:00:00-06:00</expires><headline>Lluvias fuertes</headline>"
        "<area><areaDesc>Valle de México</areaDesc>"
        "<polygon>19.1,-99.4 19.7,-99.4 19.7,-98.9 19.1,-98.9 19.1,-99.4</polygon></area>"
        "</info></alert>"
    )


def atom(alerts: list[str]) -> bytes:
    entries = "".join(
        f"<entry><id>e{n}</id><title>aviso {n}</title><updated>2026-01-19T11:00:00-06:00"
        f'</updated><content type="text/xml">{body}</content></entry>'
        for n, body in enumerate(alerts)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>urn:bench</id><title>Avisos</title><updated>2026-01-19T11:00:00-06:00</updated>"
        f"{entries}</feed>"
    ).encode()


# --------------------------------------------------------------------------- feed server


def _serve_in_process(count: int, port_out: Any, stop: Any) -> None:
    """A feed server in its own process: ``/feed/N`` with an ETag, 304 when it matches."""
    from aiohttp import web

    bodies = {
        f"/feed/{n}": atom([cap_alert(f"IDLE-{n}", "2026-01-19T11:00:00-06:00")])
        for n in range(count)
    }
    etags = {path: f'"v1-{n}"' for n, path in enumerate(bodies)}

    async def handle(request: web.Request) -> web.Response:
        path = request.path
        if path not in bodies:
            return web.Response(status=404)
        if request.headers.get("If-None-Match") == etags[path]:
            return web.Response(status=304, headers={"ETag": etags[path]})
        return web.Response(
            body=bodies[path], content_type="application/atom+xml", headers={"ETag": etags[path]}
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_out.send(runner.addresses[0][1])
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    asyncio.run(main())


@dataclass
class LiveServer:
    """An in-process server whose documents the benchmark changes while polling runs."""

    documents: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    url: str = ""

    def publish(self, path: str, body: bytes) -> None:
        self.documents[path] = (body, f'"{hash(body) & 0xFFFFFFFF:x}"')

    async def start(self) -> Callable[[], Any]:
        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            body, etag = self.documents[request.path]
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
            return web.Response(
                body=body, content_type="application/atom+xml", headers={"ETag": etag}
            )

        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return runner.cleanup


# --------------------------------------------------------------------------- timing hooks


class TimedFetcher(HttpFetcher):
    """Remembers when each feed's current poll started fetching."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.started: dict[str, float] = {}

    async def fetch(self, url: str, **kwargs: Any) -> FetchResult:
        self.started[kwargs["feed"]] = time.perf_counter()
        return await super().fetch(url, **kwargs)


class TimedIngestor:
    """The real ingest stage, noting when each new alert was stored."""

    def __init__(self, inner: Ingestor, fetcher: TimedFetcher) -> None:
        self.inner = inner
        self.fetcher = fetcher
        self.processing_ms: dict[str, float] = {}

    async def ingest_item(self, item: FeedItem, *, feed: str, actor: str) -> ItemOutcome:
        outcome = await self.inner.ingest_item(item, feed=feed, actor=actor)
        if outcome.created:
            started = self.fetcher.started[feed]
            self.processing_ms[item.alert.identifier] = (time.perf_counter() - started) * 1000
        return outcome


async def _store(folder: Path, name: str) -> tuple[Any, Ingestor, FeedStateRepository]:
    url = f"sqlite:///{folder / name}"
    await upgrade(url)
    engine = make_engine(url)
    return engine, Ingestor(AlertRepository(engine)), FeedStateRepository(engine)


def _quiet_logs() -> None:
    from alertcast.log import configure_logging

    configure_logging("error", "json")


# --------------------------------------------------------------------------- publish → stored


async def bench_publish(folder: Path, feeds: int, duration_s: float, rate: float) -> list[float]:
    server = LiveServer()
    for n in range(feeds):
        server.publish(f"/feed/{n}", atom([cap_alert(f"BASE-{n}", "2026-01-19T11:00:00-06:00")]))
    cleanup = await server.start()
    engine, ingestor, repository = await _store(folder, "publish.db")
    session = make_session(limit=400, limit_per_host=400)
    fetcher = TimedFetcher(session)
    timed = TimedIngestor(ingestor, fetcher)
    configs = [
        feed(f"feed-{n}", "cap-index", server.url + f"/feed/{n}", interval_s=1.0, jitter=0.1)
        for n in range(feeds)
    ]
    poller = Poller(configs, fetcher=fetcher, ingestor=timed, repository=repository)
    task = asyncio.create_task(poller.run())
    rng = random.Random(42)
    published: list[str] = []
    try:
        await asyncio.sleep(3.0)  # every feed's first poll (and its baseline alert) is done
        end = time.perf_counter() + duration_s
        number = 0
        while time.perf_counter() < end:
            n = rng.randrange(feeds)
            number += 1
            identifier = f"NEW-{number}"
            sent = f"2026-01-19T12:{number // 60 % 60:02d}:{number % 60:02d}-06:00"
            body = atom(
                [cap_alert(identifier, sent), cap_alert(f"BASE-{n}", "2026-01-19T11:00:00-06:00")]
            )
            server.publish(f"/feed/{n}", body)
            published.append(identifier)
            await asyncio.sleep(rng.expovariate(rate))
        for _ in range(50):  # let the last publications be polled
            if all(identifier in timed.processing_ms for identifier in published):
                break
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await session.close()
        await cleanup()
        await engine.dispose()
    return [timed.processing_ms[i] for i in published if i in timed.processing_ms]


# --------------------------------------------------------------------------- idle feeds


async def bench_idle(folder: Path, feeds: int, interval_s: float) -> tuple[float, int]:
    """CPU percent of one core over one interval, and how many feeds polled in it."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    stop = context.Event()
    process = context.Process(target=_serve_in_process, args=(feeds, send, stop), daemon=True)
    process.start()
    port = receive.recv()
    url = f"http://127.0.0.1:{port}"
    engine, ingestor, repository = await _store(folder, "idle.db")
    # A service that has been running a while: every feed already holds the server's
    # ETag, and the feeds' next polls are spread over the interval (a restart resumes
    # them from the database), so every poll in the window is a 304.
    rng = random.Random(7)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            feed_state.insert(),
            [
                {
                    "feed": f"idle-{n}",
                    "etag": f'"v1-{n}"',
                    "last_attempt_at": now - timedelta(seconds=interval_s),
                    "last_success_at": now - timedelta(seconds=interval_s),
                    "last_change_at": now - timedelta(seconds=interval_s),
                    "next_poll_at": now + timedelta(seconds=rng.uniform(1, interval_s + 1)),
                }
                for n in range(feeds)
            ],
        )
    session = make_session(limit=400, limit_per_host=400)
    configs = [
        feed(f"idle-{n}", "cap-index", f"{url}/feed/{n}", interval_s=interval_s, jitter=0.1)
        for n in range(feeds)
    ]
    poller = Poller(configs, fetcher=HttpFetcher(session), ingestor=ingestor, repository=repository)
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.sleep(1.0)  # every task started and asleep until its feed's turn
        start = datetime.now(UTC)
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(interval_s)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await asyncio.sleep(1.0)  # the last quiet records are written
        states = await repository.all()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await session.close()
        await engine.dispose()
        stop.set()
        process.join(5)
    polled = sum(
        1
        for state in states.values()
        if state.last_success_at is not None
        and state.last_success_at >= start
        and state.last_change_at is not None
        and state.last_change_at < start
    )
    return 100 * cpu / wall, polled


# --------------------------------------------------------------------------- main


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def run(quick: bool) -> dict[str, Any]:
    _quiet_logs()
    corpus = corpus_path()
    result: dict[str, Any] = {}
    result["parse_alerts_per_s"] = bench_parse(corpus, 0.3 if quick else 1.0)
    with tempfile.TemporaryDirectory(prefix="alertcast-bench-") as tmp:
        folder = Path(tmp)
        latencies = await bench_publish(folder, 200, 5.0 if quick else 20.0, rate=10.0)
        result["publish_to_stored_ms_p50"] = round(statistics.median(latencies), 1)
        result["publish_to_stored_ms_p99"] = round(percentile(latencies, 0.99), 1)
        result["publish_to_stored_samples"] = len(latencies)
        interval = 20.0 if quick else 60.0
        cpu_percent, polled = await bench_idle(folder, 1000, interval)
        result["idle_1000_feeds_cpu_percent"] = round(cpu_percent, 2)
        result["idle_interval_s"] = interval
        result["idle_feeds_polled_in_window"] = polled
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, rougher figures")
    quick = parser.parse_args().quick
    if not (corpus_path() / "SOURCES.md").is_file():
        print(json.dumps({"error": f"no corpus at {corpus_path()}; set ALERTCAST_CORPUS"}))
        return 1
    started = time.perf_counter()
    result = asyncio.run(run(quick))
    result["bench_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
