"""The composition root: builds everything, owns every resource, runs one event loop.

Only this module (and the CLI) knows which adapters exist. Every resource
opened here is closed here, in reverse order, whether the service stops on
SIGTERM, on Ctrl+C or on an error; background work runs in one TaskGroup so a
crash in one part is seen, logged and stops the whole service cleanly instead
of leaving a half-alive process.

A process runs the parts its roles name (:mod:`alertcast.ha.roles`): all of
them by default, or a share of them when several instances split the work
against one PostgreSQL (``alertcast serve --role web`` and so on).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import lifecycle
from alertcast.areas import AreaCatalogue
from alertcast.bot.runner import CitizenBot
from alertcast.config import Config
from alertcast.dispatch.cancellation import cancel_on_lifecycle
from alertcast.dispatch.progress import channel_rate_limits
from alertcast.dispatch.service import Dispatch, build_dispatch
from alertcast.feeds.drop_folder import DropFolderFeed
from alertcast.feeds.http import HttpFetcher, make_session
from alertcast.feeds.lease import instance_id
from alertcast.feeds.poller import Poller
from alertcast.ha.bots import LeasedBots
from alertcast.ha.leases import DEFAULT_RENEW_EVERY_S, DEFAULT_TTL_S
from alertcast.ha.roles import ALL_ROLES, ordered, parse_roles
from alertcast.ha.status import RoleStatus
from alertcast.ingest import Ingestor
from alertcast.metrics import Metrics, metrics
from alertcast.officers.services import OfficeServices, office_services
from alertcast.officers.workflow import AlertDesk
from alertcast.store.alerts import AlertRepository
from alertcast.store.engine import make_engine, redact_url
from alertcast.store.feed_state import FeedStateRepository
from alertcast.store.migrate import upgrade
from alertcast.subscribers.crypto import KEY_ENV, SubscriberKeys
from alertcast.subscribers.store import SubscriberStore
from alertcast.web.app import make_operations_app, make_web_app

log = structlog.get_logger(__name__)

EXPIRY_SWEEP_S = 30.0
"""How often alerts past their ``expires`` are marked expired."""
RELEASE_SWEEP_S = 5.0
"""How often approved alerts scheduled for later are checked for release."""


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
    dispatch: Dispatch | None = None
    subscribers: SubscriberStore | None = None
    catalogue: AreaCatalogue | None = None
    officers: OfficeServices | None = None
    roles: frozenset[str] = ALL_ROLES
    instance: str = ""
    """This process's name in feed and role leases (:func:`alertcast.feeds.lease.instance_id`)."""
    role_status: RoleStatus | None = None


def subscriber_store(config: Config, engine: AsyncEngine) -> SubscriberStore | None:
    """The citizens' store, when its key is set (``ALERTCAST_SUBSCRIBER_KEY``).

    Without the key nobody can subscribe (addresses are only ever stored
    encrypted) and subscriber audiences reach nobody; the rest works.
    """
    if not os.environ.get(KEY_ENV, "").strip():
        log.warning("subscribers.disabled", reason=f"{KEY_ENV} is not set")
        return None
    kinds = {c.name: c.kind for c in config.channels}
    return SubscriberStore(engine, SubscriberKeys.from_env(), kinds=kinds)


def public_url(config: Config) -> str:
    """How the public reaches this service: ``service.public_url``, else the bound address."""
    service = config.service
    return service.public_url or f"http://{service.host}:{service.port}"


def twilio_auth_tokens(config: Config) -> dict[str, str]:
    """Each enabled Twilio channel's auth token, for validating its signed status callbacks."""
    tokens: dict[str, str] = {}
    for channel in config.channels:
        if channel.enabled and channel.kind in ("sms", "whatsapp"):
            token = channel.secret("auth_token")
            if token:
                tokens[channel.name] = token
    return tokens


def dispatch_for(
    config: Config, engine: AsyncEngine
) -> tuple[Dispatch, SubscriberStore | None, AreaCatalogue]:
    """Dispatch as ``serve`` and ``alertcast worker`` both run it, with the citizens' store.

    Channels open their own HTTP sessions: a send must know whether its request
    left (webhook tracing), which the feeds' shared session does not record.
    """
    subscribers = subscriber_store(config, engine)
    catalogue = AreaCatalogue(engine)
    dispatch = build_dispatch(
        config,
        engine,
        site_url=public_url(config),
        subscribers=subscribers,
        catalogue=catalogue,
    )
    return dispatch, subscribers, catalogue


def build_ingestor(
    config: Config, repository: AlertRepository, dispatch: Dispatch | None = None
) -> Ingestor:
    """The one ingest stage: each new alert is routed and planned, and a Cancel or
    Update stops the pending deliveries of what it replaces."""
    return Ingestor(
        repository,
        strict=config.cap.strict,
        max_bytes=config.cap.max_bytes,
        listeners=(dispatch.planner.on_new_alert,) if dispatch is not None else (),
        effect_listeners=(cancel_on_lifecycle(repository.engine),),
        feeds=config.feeds,
    )


PLANNING_ROLES = frozenset({"web", "worker", "poller"})
"""Roles through which alerts enter or are released, so they plan deliveries at once."""
OFFICER_ROLES = frozenset({"web", "worker"})
"""Roles that need the officers' desk: the console and API, the scheduled-release sweep."""


async def build_runtime(
    config: Config,
    http: aiohttp.ClientSession | None = None,
    *,
    roles: Collection[str] = ALL_ROLES,
) -> Runtime:
    """Open the database (migrating it), and build what ``roles`` need.

    Wherever alerts come in (``poller``: feeds; ``web``: push ingest and the
    officers' desk; ``worker``: scheduled releases) the planner is built and
    routes each new alert at once: a warning must not wait for a catch-up
    sweep, and planning is only a database write, safe in any number of
    instances. Building the planner builds the channels too (the planner
    groups Telegram targets by chat); they open no connection until they send,
    and only the ``worker`` role sends.
    """
    wanted = frozenset(roles)
    config.service.data_dir.mkdir(parents=True, exist_ok=True)
    revision = await upgrade(config.database_url)
    log.info("database.ready", url=redact_url(config.database_url), revision=revision)
    engine = make_engine(config.database_url)
    dispatch: Dispatch | None = None
    try:
        if wanted & PLANNING_ROLES:
            dispatch, subscribers, catalogue = dispatch_for(config, engine)
        else:
            subscribers, catalogue = subscriber_store(config, engine), AreaCatalogue(engine)
    except Exception:
        await engine.dispose()
        raise
    repository = AlertRepository(engine)
    ingestor = build_ingestor(config, repository, dispatch)
    feeds = (
        [
            DropFolderFeed(feed, ingestor)
            for feed in config.feeds
            if feed.enabled and feed.kind == "cap-dir"
        ]
        if "poller" in wanted
        else []
    )
    officers = (
        office_services(
            config,
            engine,
            planner=dispatch.planner if dispatch is not None else None,
            subscribers=subscribers,
            catalogue=catalogue,
        )
        if wanted & OFFICER_ROLES
        else None
    )
    return Runtime(
        config,
        engine,
        repository,
        ingestor,
        feeds,
        http=http,
        dispatch=dispatch,
        subscribers=subscribers,
        catalogue=catalogue,
        officers=officers,
        roles=wanted,
    )


async def serve(
    config: Config,
    *,
    roles: Collection[str] = ALL_ROLES,
    host: str | None = None,
    port: int | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Runtime], Coroutine[Any, Any, None]] | None = None,
    bot_lease_ttl_s: float = DEFAULT_TTL_S,
    bot_lease_renew_every_s: float = DEFAULT_RENEW_EVERY_S,
) -> None:
    """Run the parts named by ``roles`` until ``stop`` is set or SIGTERM/SIGINT arrives.

    Every role by default (one machine). ``web`` serves HTTP; ``worker`` sends,
    releases scheduled alerts and expires old ones; ``poller`` polls the feeds
    and drop folders; ``bot`` runs each citizens' bot consumer while this
    instance holds its lease (:mod:`alertcast.ha.bots`). Raises
    :class:`~alertcast.ha.roles.RoleError` for an unknown role.
    """
    wanted = parse_roles(sorted(roles))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    instance = instance_id()  # one name per process: feed leases, role leases, logs
    log.info("role.starting", roles=ordered(wanted), instance=instance)
    # One HTTP session for the whole process: every feed and linked document
    # shares its connection pool, and it is closed below whatever happens.
    http = make_session()
    try:
        runtime = await build_runtime(config, http, roles=wanted)
    except BaseException:
        await http.close()
        raise
    runtime.instance = instance
    runtime.role_status = status = RoleStatus(wanted)
    runner: web.AppRunner | None = None
    bots: list[CitizenBot] = []
    try:
        if "bot" in wanted:
            bots = citizen_bots(config, runtime)
        elif "web" in wanted:
            bots = citizen_bots(config, runtime, webhook_only=True)
        # Webhook-mode bots receive on every web instance; the lease decides who
        # registers the webhook (bot role), as it decides who polls.
        receiving = [bot for bot in bots if bot.mode == "webhook"] if "web" in wanted else []
        leased = LeasedBots(
            bots if "bot" in wanted else [],
            runtime.engine,
            instance,
            ttl_s=bot_lease_ttl_s,
            renew_every_s=bot_lease_renew_every_s,
        )
        status.add(leased.leases)
        if "poller" in wanted:
            runtime.poller = Poller(
                config.feeds,
                fetcher=HttpFetcher(http),
                ingestor=runtime.ingestor,
                repository=FeedStateRepository(runtime.engine),
                drop_folders=runtime.feeds,
                owner=instance,
            )
        if "web" in wanted:
            for bot in receiving:
                await bot.open()
        runner = await _start_web(
            config, runtime, receiving, host=host, port=port, full="web" in wanted
        )
        log.info(
            "service.started",
            roles=ordered(wanted),
            url=runtime.site_url or None,
            feeds=len(runtime.poller.feeds) + len(runtime.feeds) if runtime.poller else 0,
            bots=[bot.name for bot in leased.bots],
            instance=instance,
        )
        async with asyncio.TaskGroup() as group:
            tasks = []
            if runtime.poller is not None:
                tasks.append(group.create_task(runtime.poller.run(), name="poller"))
            if "worker" in wanted:
                tasks.append(group.create_task(_expire_periodically(runtime.engine), name="expiry"))
                if runtime.officers is not None:
                    desk = runtime.officers.desk
                    tasks.append(group.create_task(_release_periodically(desk), name="scheduled"))
                if runtime.dispatch is not None:
                    # Not cancelled below: on stop the worker drains its sends in flight
                    # within its bound and releases its leases by itself.
                    group.create_task(runtime.dispatch.run(stop), name="dispatch")
            if leased.bots:
                # Not cancelled either: on stop each consumer stops, then its lease is released.
                group.create_task(leased.run(stop), name="bots")
            if on_ready is not None:
                tasks.append(group.create_task(on_ready(runtime), name="on_ready"))
            await stop.wait()
            log.info("service.stopping", roles=ordered(wanted), instance=instance)
            for task in tasks:
                task.cancel()
    finally:
        for bot in bots:
            try:
                await bot.stop()
            except Exception:  # one bot failing to stop must not keep the rest running
                log.exception("bot.stop_failed")
        if runner is not None:
            await runner.cleanup()
        if runtime.dispatch is not None:
            await runtime.dispatch.aclose()
        await http.close()
        await runtime.engine.dispose()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        log.info("service.stopped", roles=ordered(wanted), instance=instance)


async def _start_web(
    config: Config,
    runtime: Runtime,
    bots: Sequence[CitizenBot],
    *,
    host: str | None,
    port: int | None,
    full: bool = True,
) -> web.AppRunner:
    """Build the web application, bind it and note its URL in ``runtime.site_url``.

    ``full`` False (an instance without the ``web`` role) serves only the
    probes and ``/metrics`` (:func:`make_operations_app`), and leaves
    ``runtime.site_url`` empty: nobody is sent there.
    """
    process_metrics = metrics()
    process_metrics.set_roles(runtime.roles)
    process_metrics.set_feeds(feed.name for feed in config.feeds if feed.enabled)
    web_app = (
        _full_web_app(config, runtime, bots, process_metrics)
        if full
        else make_operations_app(
            runtime.engine, role_status=runtime.role_status, metrics=process_metrics
        )
    )
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    try:
        bind_host = host or config.service.host
        bind_port = config.service.port if port is None else port
        site = web.TCPSite(runner, bind_host, bind_port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    addresses = runner.addresses  # the real port when 0 asked the system for a free one
    actual_port = addresses[0][1] if addresses else bind_port
    if full:
        runtime.site_url = f"http://{bind_host}:{actual_port}"
    log.info("web.listening", url=f"http://{bind_host}:{actual_port}", full=full)
    return runner


def _full_web_app(
    config: Config, runtime: Runtime, bots: Sequence[CitizenBot], process_metrics: Metrics
) -> web.Application:
    """The whole application of the ``web`` role: API, console, public feed, webhooks."""
    push_feeds = [feed for feed in config.feeds if feed.enabled and feed.kind == "push"]
    return make_web_app(
        runtime.engine,
        runtime.repository,
        ingestor=runtime.ingestor,
        push_feeds=push_feeds,
        channel_limits=channel_rate_limits(config.channels),
        site_url=public_url(config),
        twilio_auth_tokens=twilio_auth_tokens(config),
        subscriber_store=runtime.subscribers,
        area_catalogue=runtime.catalogue,
        channel_kinds={c.name: c.kind for c in config.channels},
        extra_routes=[route for bot in bots for route in bot.aiohttp_routes()],
        officers=runtime.officers,
        tile_url=config.service.tile_url,
        role_status=runtime.role_status,
        metrics=process_metrics,
    )


def citizen_bots(
    config: Config, runtime: Runtime, *, webhook_only: bool = False
) -> list[CitizenBot]:
    """The citizens' Telegram bots: each enabled telegram channel that sets ``bot_mode``.

    A channel that only posts to a public channel sets none and runs no bot
    (Telegram allows one update consumer per bot token). ``webhook_only``
    keeps the webhook-mode ones: all a ``web`` instance without the ``bot``
    role needs (it receives what Telegram posts; it never polls).
    """
    if runtime.subscribers is None or runtime.catalogue is None:
        return []
    return [
        CitizenBot(channel, runtime.subscribers, runtime.catalogue, public_url=public_url(config))
        for channel in config.channels
        if channel.enabled
        and channel.kind == "telegram"
        and "bot_mode" in channel.options
        and (not webhook_only or channel.options["bot_mode"] == "webhook")
    ]


async def _expire_periodically(engine: AsyncEngine, every_s: float = EXPIRY_SWEEP_S) -> None:
    """Mark alerts past their ``expires`` as expired, now and then, until cancelled."""
    while True:
        try:
            await lifecycle.expire_due(engine, now=datetime.now(UTC))
        except Exception:  # the sweep must survive a database hiccup; it is logged
            log.exception("lifecycle.expiry_failed")
        await asyncio.sleep(every_s)


async def _release_periodically(desk: AlertDesk, every_s: float = RELEASE_SWEEP_S) -> None:
    """Release approved alerts whose scheduled time came, now and then, until cancelled."""
    while True:
        try:
            await desk.release_due()
        except Exception:  # the sweep must survive a database hiccup; it is logged
            log.exception("officers.release_failed")
        await asyncio.sleep(every_s)


async def run_worker(
    config: Config, *, stop: asyncio.Event | None = None, plan: bool = False
) -> None:
    """Run only dispatch (``alertcast worker``): claim, send and record until SIGTERM.

    For scale-out, any number of these run against one PostgreSQL beside the
    ``serve`` instances. On SIGTERM the worker stops claiming, lets sends in
    flight finish within its drain bound, and releases its leases. With
    ``plan`` it also routes alerts that an interrupted instance left unplanned.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    revision = await upgrade(config.database_url)
    log.info("database.ready", url=redact_url(config.database_url), revision=revision)
    engine = make_engine(config.database_url)
    dispatch: Dispatch | None = None
    try:
        dispatch, _, _ = dispatch_for(config, engine)
        log.info("worker.process_started", worker=dispatch.worker.worker_id)
        await dispatch.run(stop, plan=plan)
    finally:
        if dispatch is not None:
            await dispatch.aclose()
        await engine.dispose()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        log.info("worker.process_stopped")
