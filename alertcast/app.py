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
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.channels.console import ConsoleChannel
from alertcast.config import Config
from alertcast.feeds.drop_folder import DropFolderFeed
from alertcast.ingest import Ingestor, NewAlertListener
from alertcast.store.alerts import AlertRepository
from alertcast.store.engine import make_engine, redact_url
from alertcast.store.migrate import upgrade
from alertcast.web.app import make_web_app

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    """What a running service holds; handed to tests and to the web layer."""

    config: Config
    engine: AsyncEngine
    repository: AlertRepository
    ingestor: Ingestor
    feeds: list[DropFolderFeed]
    site_url: str = ""


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


async def build_runtime(config: Config) -> Runtime:
    """Open the database (migrating it), and build the repository, ingestor and feeds."""
    config.service.data_dir.mkdir(parents=True, exist_ok=True)
    revision = await upgrade(config.database_url)
    log.info("database.ready", url=redact_url(config.database_url), revision=revision)
    engine = make_engine(config.database_url)
    repository = AlertRepository(engine)
    ingestor = Ingestor(
        repository,
        strict=config.cap.strict,
        max_bytes=config.cap.max_bytes,
        listeners=tuple(_channels(config)),
    )
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
    runner = web.AppRunner(make_web_app(runtime.engine, runtime.repository), access_log=None)
    try:
        await runner.setup()
        bind_host = host or config.service.host
        bind_port = config.service.port if port is None else port
        site = web.TCPSite(runner, bind_host, bind_port)
        await site.start()
        addresses = runner.addresses  # the real port when 0 asked the system for a free one
        actual_port = addresses[0][1] if addresses else bind_port
        runtime.site_url = f"http://{bind_host}:{actual_port}"
        log.info("service.started", url=runtime.site_url, feeds=len(runtime.feeds))
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(feed.run(), name=feed.feed.name) for feed in runtime.feeds]
            if on_ready is not None:
                tasks.append(group.create_task(on_ready(runtime), name="on_ready"))
            await stop.wait()
            log.info("service.stopping")
            for task in tasks:
                task.cancel()
    finally:
        await runner.cleanup()
        await runtime.engine.dispose()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        log.info("service.stopped")
