"""What an operator watches at a glance: the figures behind ``GET /metrics`` (Prometheus).

Two kinds of figures, kept apart on purpose:

* **Events seen by this process**, counted as they happen: each send's
  latency and outcome (:meth:`Metrics.observe_send`, called by the dispatch
  worker), each provider's "slow down" answer (:meth:`Metrics.throttled`),
  each wait for a rate-limit token (:meth:`Metrics.rate_wait`), each feed
  poll's result (:meth:`Metrics.feed_polled`). These are per instance;
  Prometheus sums them across instances.
* **State held in the database**, the same for every instance: deliveries by
  channel and state, the queue, feed staleness, approvals pending, the audit
  chain's length. They are read at scrape time by a handful of aggregate
  queries (:meth:`Metrics.refresh_from_database`), kept for ``cache_s``
  (2 s) so that many scrapers, or many instances scraped at once, do not load
  the database; and kept longer when reading them is slow (a ledger of
  millions of rows): at most one read per ``busy_factor`` (10) times the last
  read's duration, so scrapes never take more than a tenth of the database's
  time however big the ledger grows. Nothing on the send path writes them: a fan-out of a million
  rows costs the database no extra write.

The hot-path methods cost a dictionary look-up and one observation each
(the labelled children are cached), so instrumenting every send does not
slow a fan-out.

Labels never carry a target, a payload, an error text or anything else
without bound: channel and feed names come from the configuration, outcomes
and results from fixed sets (:data:`SEND_OUTCOMES`, the poller's statuses),
providers are channel kinds.

Every :class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry`
(never the library's global one), so tests build their own and pass it in;
the process uses the one :func:`metrics` returns.

Choices an operator should know:

* ``alertcast_queue_depth`` counts pending rows that are due
  (``next_attempt_at`` reached): new rows and retries whose wait is over.
  ``alertcast_queue_oldest_pending_seconds`` is how long the longest-waiting
  of them has been due (0 when none is). Both are given, as 0, for every
  channel that has rows in the ledger, so an empty queue reads 0 rather
  than vanishing.
* ``alertcast_feed_staleness_seconds`` is absent for a feed that has never
  polled successfully (a feed with no ``last_success_at``): no figure is
  better than a made-up one. Such a feed shows in
  ``alertcast_feed_polls_total{result="failed"}``.
* When the database cannot be read, the database figures are left out (a
  stale queue depth would mislead) and ``alertcast_database_up`` is 0; the
  process's own counters are still served.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import __version__
from alertcast.errors import StoreError
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import (
    DELIVERY_STATES,
    alerts,
    audit_log,
    deliveries,
    dispatch_routes,
    feed_state,
)

__all__ = [
    "CONTENT_TYPE",
    "SEND_OUTCOMES",
    "Metrics",
    "metrics",
    "send_outcome",
]

log = structlog.get_logger(__name__)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The exposition format served: Prometheus text format 0.0.4."""

CACHE_S = 2.0
"""How long the database figures of one scrape serve the next ones."""

BUSY_FACTOR = 10.0
"""The figures are kept at least this many times as long as reading them took."""

SEND_OUTCOMES = (
    "ok",
    "transient",
    "rate_limited",
    "permanent",
    "recipient_gone",
    "sent_but_unknown",
    "other",
)
"""The ``outcome`` label of ``alertcast_send_seconds``: accepted, or the error class met."""

_OUTCOME_OF_CLASS: Mapping[str | None, str] = {
    None: "ok",
    "Transient": "transient",
    "RateLimited": "rate_limited",
    "Permanent": "permanent",
    "RecipientGone": "recipient_gone",
    "SentButUnknown": "sent_but_unknown",
}

_SEND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

_APPROVAL_STATES = ("submitted", "active")
"""An alert waits for a person when submitted, or active with a route held for approval."""


def send_outcome(error_class: str | None) -> str:
    """The ``outcome`` label for an attempt whose error class was ``error_class`` (None: ok).

    An error class outside the documented ones (a bug in an adapter) is
    ``other``: a label value never comes from an exception's name or text.
    """
    return _OUTCOME_OF_CLASS.get(error_class, "other")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DatabaseFigures:
    """The figures one scrape read from the database (:meth:`Metrics.refresh_from_database`)."""

    deliveries: Mapping[tuple[str, str], int] = field(default_factory=dict)
    queue: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    """channel -> (rows due, seconds the oldest of them has been due)."""
    staleness: Mapping[str, float] = field(default_factory=dict)
    approvals_pending: int = 0
    audit_records: int = 0


async def read_figures(engine: AsyncEngine, now: datetime) -> DatabaseFigures:
    """Run the few aggregate queries behind the database figures, in one read-only snapshot.

    Each is one statement: deliveries by channel and state is a single
    ``GROUP BY`` pass over the ledger (it grows with every fan-out, so it is
    read once per scrape, never per channel or state); the queue reads only
    pending rows through the claim index (``state`` first); the audit chain's
    length is the primary key's maximum.
    """
    by_state = select(deliveries.c.channel, deliveries.c.state, func.count()).group_by(
        deliveries.c.channel, deliveries.c.state
    )
    queue = (
        select(deliveries.c.channel, func.count(), func.min(deliveries.c.next_attempt_at))
        .where(deliveries.c.state == "pending", deliveries.c.next_attempt_at <= now)
        .group_by(deliveries.c.channel)
    )
    held = (
        select(dispatch_routes.c.alert_id)
        .where(dispatch_routes.c.state == "awaiting_approval")
        .scalar_subquery()
    )
    approvals = (
        select(func.count())
        .select_from(alerts)
        .where(alerts.c.state.in_(_APPROVAL_STATES))
        .where((alerts.c.state == "submitted") | alerts.c.id.in_(held))
    )
    chain = select(func.coalesce(func.max(audit_log.c.seq), 0))
    feeds = select(feed_state.c.feed, feed_state.c.last_success_at)
    with database_errors("cannot read the figures for /metrics"):
        async with read_only(engine) as conn:
            counts = {(str(c), str(s)): int(n) for c, s, n in await conn.execute(by_state)}
            due = {
                str(channel): (int(n), _age(now, oldest))
                for channel, n, oldest in await conn.execute(queue)
            }
            pending_approval = int((await conn.execute(approvals)).scalar_one())
            records = int((await conn.execute(chain)).scalar_one())
            staleness = {
                str(feed): _age(now, success)
                for feed, success in await conn.execute(feeds)
                if success is not None
            }
    channels = {channel for channel, _ in counts} | set(due)
    queue_by_channel = {channel: due.get(channel, (0, 0.0)) for channel in sorted(channels)}
    return DatabaseFigures(
        deliveries=counts,
        queue=queue_by_channel,
        staleness=staleness,
        approvals_pending=pending_approval,
        audit_records=records,
    )


def _age(now: datetime, then: datetime | None) -> float:
    """Seconds from ``then`` to ``now``, never negative (clocks of instances differ a little)."""
    if then is None:
        return 0.0
    return max(0.0, (now - then).total_seconds())


class _DatabaseCollector(Collector):
    """Serves the last :class:`DatabaseFigures` as gauge families when the registry is rendered."""

    def __init__(self) -> None:
        self.figures: DatabaseFigures | None = None
        self.reachable = False

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "alertcast_database_up",
            "1 when the database figures of this scrape could be read, 0 when not",
        )
        up.add_metric([], 1.0 if self.reachable else 0.0)
        yield up
        figures = self.figures
        if figures is None:
            return
        yield from _families(figures)

    def describe(self) -> Iterable[Metric]:
        return ()  # collected fresh each time: nothing to check at registration


def _families(figures: DatabaseFigures) -> Iterator[Metric]:
    by_state = GaugeMetricFamily(
        "alertcast_deliveries",
        "Delivery rows in the ledger, by channel and state",
        labels=("channel", "state"),
    )
    channels = sorted({channel for channel, _ in figures.deliveries})
    for channel in channels:
        states = [*DELIVERY_STATES]
        states += sorted({s for c, s in figures.deliveries if c == channel} - set(DELIVERY_STATES))
        for state in states:
            by_state.add_metric(
                [channel, state], float(figures.deliveries.get((channel, state), 0))
            )
    yield by_state

    depth = GaugeMetricFamily(
        "alertcast_queue_depth",
        "Pending delivery rows that are due (new rows and retries whose wait is over)",
        labels=("channel",),
    )
    oldest = GaugeMetricFamily(
        "alertcast_queue_oldest_pending_seconds",
        "How long the longest-waiting due pending row has been due (0 when none is)",
        labels=("channel",),
    )
    for channel, (rows, age) in figures.queue.items():
        depth.add_metric([channel], float(rows))
        oldest.add_metric([channel], age)
    yield depth
    yield oldest

    stale = GaugeMetricFamily(
        "alertcast_feed_staleness_seconds",
        "Seconds since the feed's last successful poll (absent until it has succeeded once)",
        labels=("feed",),
    )
    for feed, age in sorted(figures.staleness.items()):
        stale.add_metric([feed], age)
    yield stale

    approvals = GaugeMetricFamily(
        "alertcast_approvals_pending",
        "Alerts waiting for a person: submitted, or active with a route held for approval",
    )
    approvals.add_metric([], float(figures.approvals_pending))
    yield approvals

    chain = GaugeMetricFamily(
        "alertcast_audit_records", "Records in the audit chain (its highest sequence number)"
    )
    chain.add_metric([], float(figures.audit_records))
    yield chain


class Metrics:
    """The instruments of one process, in a registry of their own.

    ``roles`` names the process roles for ``alertcast_info`` (see
    :meth:`set_roles`); ``feeds``, when given, limits the staleness figure to
    those feeds, so a feed removed from the configuration stops being
    reported (see :meth:`set_feeds`). ``clock`` (monotonic seconds) times the
    cache and ``wall`` gives "now" for ages; tests pass their own.
    """

    def __init__(
        self,
        *,
        roles: Iterable[str] = (),
        feeds: Iterable[str] | None = None,
        cache_s: float = CACHE_S,
        busy_factor: float = BUSY_FACTOR,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.cache_s = cache_s
        self.busy_factor = busy_factor
        self._hold_s = cache_s
        self._clock = clock
        self._wall = wall
        self._feeds: frozenset[str] | None = None if feeds is None else frozenset(feeds)
        self._info = Gauge(
            "alertcast_info",
            "This alertcast process: its version and roles (always 1)",
            ("version", "roles"),
            registry=self.registry,
        )
        self._send = Histogram(
            "alertcast_send_seconds",
            "Time of one send to a provider, by channel and outcome",
            ("channel", "outcome"),
            buckets=_SEND_BUCKETS,
            registry=self.registry,
        )
        self._wait = Histogram(
            "alertcast_rate_limiter_wait_seconds",
            "Time a send waited for its rate-limit tokens, by channel",
            ("channel",),
            buckets=_WAIT_BUCKETS,
            registry=self.registry,
        )
        self._throttled = Counter(
            "alertcast_provider_throttled",
            "Answers from a provider asking to slow down (HTTP 429 or its equivalent)",
            ("channel", "provider"),
            registry=self.registry,
        )
        self._polls = Counter(
            "alertcast_feed_polls",
            "Feed polls by feed and result (changed, unchanged, not-modified, failed, skipped)",
            ("feed", "result"),
            registry=self.registry,
        )
        self._database = _DatabaseCollector()
        self.registry.register(self._database)
        # Labelled children, looked up once each: the hot path is a dict look-up and an observe.
        self._send_children: dict[tuple[str, str], Histogram] = {}
        self._wait_children: dict[str, Histogram] = {}
        self._refresh_lock: asyncio.Lock | None = None
        self._refreshed_at = -math.inf
        self.set_roles(roles)

    # ------------------------------------------------------------ configuration

    def set_roles(self, roles: Iterable[str]) -> None:
        """Name this process's roles in ``alertcast_info`` (sorted, comma-separated)."""
        self._info.clear()
        self._info.labels(version=__version__, roles=",".join(sorted(set(roles)))).set(1)

    def set_feeds(self, feeds: Iterable[str] | None) -> None:
        """Report staleness only for these feeds (the configured ones); None: every feed."""
        self._feeds = None if feeds is None else frozenset(feeds)
        self._refreshed_at = -math.inf

    # ------------------------------------------------------------ events (hot path)

    def observe_send(self, channel: str, seconds: float, outcome: str) -> None:
        """A send on ``channel`` took ``seconds``, ending in ``outcome`` (:data:`SEND_OUTCOMES`)."""
        key = (channel, outcome)
        child = self._send_children.get(key)
        if child is None:
            if outcome not in SEND_OUTCOMES:
                raise ValueError(f"unknown send outcome {outcome!r}")
            child = self._send_children[key] = self._send.labels(channel=channel, outcome=outcome)
        child.observe(seconds)

    def rate_wait(self, channel: str, seconds: float) -> None:
        """A send on ``channel`` waited ``seconds`` for its rate-limit tokens (0 included)."""
        child = self._wait_children.get(channel)
        if child is None:
            child = self._wait_children[channel] = self._wait.labels(channel=channel)
        child.observe(seconds)

    def throttled(self, channel: str, provider: str) -> None:
        """``provider`` (the channel's kind) answered a send on ``channel`` with "slow down"."""
        self._throttled.labels(channel=channel, provider=provider).inc()

    def feed_polled(self, feed: str, result: str) -> None:
        """One poll of ``feed`` ended with ``result`` (the poller's status name)."""
        self._polls.labels(feed=feed, result=result).inc()

    # ------------------------------------------------------------ database figures

    async def refresh_from_database(self, engine: AsyncEngine, *, force: bool = False) -> None:
        """Read the database figures, unless the last read is still fresh enough.

        Fresh enough: under ``cache_s`` old, or under ``busy_factor`` times
        the time that read took (see the module's docstring).

        Concurrent scrapes share one read. A database that cannot be read is
        logged and the database figures are left out until it can be (never
        raised: the process's own figures are still worth serving).
        """
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        async with self._refresh_lock:
            started = self._clock()
            if not force and started - self._refreshed_at < self._hold_s:
                return
            self._hold_s = self.cache_s
            try:
                figures = await read_figures(engine, self._wall())
            except StoreError as exc:
                log.warning("metrics.database_unreadable", reason=str(exc))
                self._database.figures = None
                self._database.reachable = False
            else:
                took = self._clock() - started
                self._hold_s = max(self.cache_s, self.busy_factor * took)
                if self._feeds is not None:
                    wanted = self._feeds
                    staleness = {f: s for f, s in figures.staleness.items() if f in wanted}
                    figures = DatabaseFigures(
                        deliveries=figures.deliveries,
                        queue=figures.queue,
                        staleness=staleness,
                        approvals_pending=figures.approvals_pending,
                        audit_records=figures.audit_records,
                    )
                self._database.figures = figures
                self._database.reachable = True
            self._refreshed_at = self._clock()

    # ------------------------------------------------------------ exposition

    def render(self) -> bytes:
        """Every figure in Prometheus text format 0.0.4 (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)


_process: Metrics | None = None
_process_lock = threading.Lock()


def metrics() -> Metrics:
    """The one :class:`Metrics` of this process, created on first use."""
    global _process
    if _process is None:
        with _process_lock:
            if _process is None:
                _process = Metrics()
    return _process
