"""The composition root: builds everything, owns every resource, runs one event loop.

Only this module (and the CLI) knows which adapters exist. Every resource
opened here is closed here, in reverse order, whether the service stops on
SIGTERM, on Ctrl+C or on an error; background work runs in one TaskGroup so a
crash in one part is seen, logged and stops the whole service cleanly instead
of leaving a half-alive process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import lifecycle
from alertcast.channels.console import ConsoleChannel
from alertcast.config import Config
from alertcast.feeds.drop_folder import DropFolderFeed
from alertcast.feeds.http import HttpFetcher, make_session
from alertcast.feeds.poller import Poller
from alertcast.ingest import Ingestor, NewAlertListener
from alertcast.store.alerts import AlertRepository
from alertcast.store.engine import make_engine, redact_url
from alertcast.store.feed_state import FeedStateRepository
from alertcast.store.migrate import upgrade
from alertcast.web.app import make_web_app

log = structlog.get_logger(__name__)

EXPIRY_SWEEP_S = 30.0
"""How often alerts past their ``expires`` are marked expired."""


@dataclass
class Runtime:
    """What a running service holds; handed to tests and to the web layer."""

    config: Config
    engine: AsyncEngine
    repository: AlertRepository
    ingestor: Ingestor
    feeds: list[DropFolderFeed]
    site_url: str = ""
    poller: Poller | None = None
    http: aiohttp.ClientSession | None = None


def _channels(config: Config) -> list[NewAlertListener]:
    listeners: list[NewAlertListener] = []
    for channel in config.channels:
        if not channel.enabled:
            continue
        if channel.kind in ("console", "file"):
            outbox = config.service.data_dir / "outbox" / f"{channel.name}.jsonl"
            language = str(channel.options.get("language", "es"))
            listeners.append(ConsoleChannel(channel.name, outbox, language).announce)
    return listeners


def build_ingestor(config: Config, repository: AlertRepository) -> Ingestor:
    """The one ingest stage, announcing new alerts on the configured channels."""
    return Ingestor(
        repository,
        strict=config.cap.strict,
        max_bytes=config.cap.max_bytes,
        listeners=tuple(_channels(config)),
        feeds=config.feeds,
    )


async def build_runtime(config: Config) -> Runtime:
    """Open the database (migrating it), and build the repository, ingestor and feeds."""
    config.service.data_dir.mkdir(parents=True, exist_ok=True)
    revision = await upgrade(config.database_url)
    log.info("database.ready", url=redact_url(config.database_url), revision=revision)
    engine = make_engine(config.database_url)
    repository = AlertRepository(engine)
    ingestor = build_ingestor(config, repository)
    feeds = [
        DropFolderFeed(feed, ingestor)
        for feed in config.feeds
        if feed.enabled and feed.kind == "cap-dir"
    ]
    return Runtime(config, engine, repository, ingestor, feeds)


async def serve(
    config: Config,
    *,
    host: str | None = None,
    port: int | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Runtime], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Run the service until ``stop`` is set or SIGTERM/SIGINT arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runtime = await build_runtime(config)
    runner: web.AppRunner | None = None
    try:
        # One HTTP session for the whole process: every feed and linked document
        # shares its connection pool, and it is closed below whatever happens.
        runtime.http = make_session()
        runtime.poller = Poller(
            config.feeds,
            fetcher=HttpFetcher(runtime.http),
            ingestor=runtime.ingestor,
            repository=FeedStateRepository(runtime.engine),
            drop_folders=runtime.feeds,
        )
        push_feeds = [feed for feed in config.feeds if feed.enabled and feed.kind == "push"]
        web_app = make_web_app(
            runtime.engine, runtime.repository, ingestor=runtime.ingestor, push_feeds=push_feeds
        )
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        bind_host = host or config.service.host
        bind_port = config.service.port if port is None else port
        site = web.TCPSite(runner, bind_host, bind_port)
        await site.start()
        addresses = runner.addresses  # the real port when 0 asked the system for a free one
        actual_port = addresses[0][1] if addresses else bind_port
        runtime.site_url = f"http://{bind_host}:{actual_port}"
        log.info(
            "service.started",
            url=runtime.site_url,
            feeds=len(runtime.poller.feeds) + len(runtime.feeds),
            instance=runtime.poller.owner,
        )
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(runtime.poller.run(), name="poller"),
                group.create_task(_expire_periodically(runtime.engine), name="expiry"),
            ]
            if on_ready is not None:
                tasks.append(group.create_task(on_ready(runtime), name="on_ready"))
            await stop.wait()
            log.info("service.stopping")
            for task in tasks:
                task.cancel()
    finally:
        if runner is not None:
            await runner.cleanup()
        if runtime.http is not None:
            await runtime.http.close()
        await runtime.engine.dispose()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        log.info("service.stopped")


async def _expire_periodically(engine: AsyncEngine, every_s: float = EXPIRY_SWEEP_S) -> None:
    """Mark alerts past their ``expires`` as expired, now and then, until cancelled."""
    while True:
        try:
            await lifecycle.expire_due(engine, now=datetime.now(UTC))
        except Exception:  # the sweep must survive a database hiccup; it is logged
            log.exception("lifecycle.expiry_failed")
        await asyncio.sleep(every_s)
