"""The poller: every enabled feed on its own clock, none able to hold up another.

Each fetched feed gets one asyncio task (:meth:`FeedPoller.run`). A task
waits its feed's interval, spread by ± ``jitter`` so that a thousand feeds
configured alike do not fire in the same second, then polls once:

1. **lease**: take (or keep) the right to poll this feed
   (:mod:`alertcast.feeds.lease`); an instance that does not get it waits;
2. **fetch** with the validators of the last document fully handled
   (conditional GET); a 304, or a body with the same SHA-256, ends the poll
   there: nothing is parsed or ingested;
3. **parse** in a worker thread (parsers are pure and may be slow on a big
   index), with the kind's parser;
4. **ingest** each item through :meth:`Ingestor.ingest_item` (lifecycle,
   dedup and audit live there); an item already stored from this feed with
   the same bytes is not offered again;
5. **linked documents**: fetched once each (:mod:`alertcast.feeds.linked`),
   their alerts ingested the same way;
6. **withdrawal**: when the document is the issuer's *complete* list of
   active alerts, an entry that was listed before and is gone now has its
   alert marked withdrawn (:func:`alertcast.lifecycle.withdraw`, which leaves
   cancelled, superseded and expired alerts alone);
7. **health**: success or failure recorded with the next poll time and the
   lease, in one statement (:mod:`alertcast.feed_health`). Quiet polls (a
   304 or the same body, after a success) of all feeds are written together
   a few times a second (:class:`~alertcast.store.feed_state.QuietSuccessWriter`),
   which is what keeps a thousand idle feeds cheap.

The validators (ETag, Last-Modified, hash) are stored only when the document
was fully handled; if a linked document or an item could not be taken, the
next poll reads the document again and retries just what is missing.

**Failures.** A fetch or parse failure is recorded with its reason; the next
attempt then waits with exponential backoff, ``interval × 2^(n-1)`` after the
n-th consecutive failure, capped at ``max_backoff_s`` (30 minutes by
default), with the same jitter; a ``Retry-After`` from the server is honoured
up to that cap. Backoff state lives in ``feed_state``, so it survives
restarts and is shared by instances.

**Isolation.** A feed's fetch is bounded in time and size, its parse runs in
a thread, and each task catches everything but cancellation, so a slow,
broken or hostile feed delays nobody else. A bug met while polling is logged
with its traceback, counted as a failure, and the task goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

import structlog
import tenacity
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import feed_health, lifecycle
from alertcast.config import FeedConfig
from alertcast.domain import AlertKey
from alertcast.errors import FeedError, StoreError
from alertcast.feed_health import HealthListener
from alertcast.feeds.base import FeedBatch, FeedItem, FeedParser
from alertcast.feeds.drop_folder import DropFolderFeed
from alertcast.feeds.http import FetchError, HttpFetcher, allowed_host_check
from alertcast.feeds.lease import FeedLease, grace_s, instance_id
from alertcast.feeds.linked import LinkedFetcher, LinkResult
from alertcast.metrics import Metrics
from alertcast.metrics import metrics as process_metrics
from alertcast.store import feed_state as feed_state_sql
from alertcast.store.engine import database_errors
from alertcast.store.feed_state import (
    FeedEntry,
    FeedState,
    FeedStateRepository,
    QuietSuccessWriter,
    Validators,
)

log = structlog.get_logger(__name__)

SHARED_LINK_LIMIT = 16
"""Linked documents fetched at once across all feeds of one instance."""

ENTRY_MEMORY = timedelta(days=30)
"""Entries that left their index longer ago than this are forgotten."""

_EARLY = timedelta(seconds=1)
"""A poll this much ahead of the feed's planned time waits for it (clocks are not exact)."""

Clock = Callable[[], datetime]
ParserLookup = Callable[[str], FeedParser]
PollStatus = Literal["changed", "unchanged", "not-modified", "failed", "skipped"]


class ItemResult(Protocol):
    """What the ingest stage says about one item (``alertcast.ingest.ItemOutcome``)."""

    @property
    def created(self) -> bool: ...

    @property
    def alert_id(self) -> int | None: ...

    @property
    def key(self) -> AlertKey: ...


class ItemIngestor(Protocol):
    """The ingest stage as the poller uses it (``alertcast.ingest.Ingestor``)."""

    async def ingest_item(self, item: FeedItem, *, feed: str, actor: str) -> ItemResult: ...


Withdraw = Callable[..., Awaitable[int]]


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_parsers(kind: str) -> FeedParser:
    """The registry's parser for ``kind`` (imported late: the registry imports every kind)."""
    from alertcast.feeds.registry import parser_for

    return parser_for(kind)


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one poll did, for logs, the CLI and tests."""

    feed: str
    status: PollStatus
    items: int = 0
    new: int = 0
    known: int = 0
    links_fetched: int = 0
    withdrawn: int = 0
    errors: tuple[str, ...] = ()
    error: str | None = None
    next_poll_at: datetime | None = None
    holder: str | None = None
    alert_keys: tuple[str, ...] = field(default=())
    """The keys of the alerts stored for the first time."""

    def to_json(self) -> dict[str, object]:
        return {
            "feed": self.feed,
            "status": self.status,
            "items": self.items,
            "new": self.new,
            "known": self.known,
            "links_fetched": self.links_fetched,
            "withdrawn": self.withdrawn,
            "errors": list(self.errors),
            "error": self.error,
            "next_poll_at": self.next_poll_at.isoformat() if self.next_poll_at else None,
            "holder": self.holder,
            "new_alerts": list(self.alert_keys),
        }


# --------------------------------------------------------------------------- timing


def _attempt(number: int) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(tenacity.AsyncRetrying(), fn=None, args=(), kwargs={})
    state.attempt_number = number
    return state


def backoff_s(feed: FeedConfig, failures: int) -> float:
    """The wait after ``failures`` consecutive failures, before jitter.

    ``interval × 2^(failures-1)`` capped at ``max_backoff_s`` (never below the
    interval): 60 s, 120 s, 240 s... up to 30 minutes for a 60-second feed.
    """
    if failures <= 0:
        return feed.interval_s
    cap = max(feed.max_backoff_s, feed.interval_s)
    wait = tenacity.wait_exponential(multiplier=feed.interval_s, exp_base=2, max=cap)
    return float(wait(_attempt(failures)))


def next_delay_s(
    feed: FeedConfig,
    failures: int,
    rng: random.Random,
    *,
    retry_after: float | None = None,
) -> float:
    """Seconds until the next poll: the interval or the backoff, spread by ± jitter."""
    base = backoff_s(feed, failures)
    spread = base * feed.jitter
    delay = base + rng.uniform(-spread, spread)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(feed.max_backoff_s, feed.interval_s)))
    return max(delay, 0.0)


# --------------------------------------------------------------------------- one feed


class FeedPoller:
    """Polls one fetched feed: :meth:`poll_once` for a single poll, :meth:`run` forever."""

    def __init__(
        self,
        feed: FeedConfig,
        *,
        fetcher: HttpFetcher,
        ingestor: ItemIngestor,
        repository: FeedStateRepository,
        owner: str,
        parsers: ParserLookup = default_parsers,
        link_limit: asyncio.Semaphore | None = None,
        withdraw: Withdraw = lifecycle.withdraw,
        listeners: Sequence[HealthListener] = (),
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        quiet_writer: QuietSuccessWriter | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if not feed.fetched or not feed.url:
            raise ValueError(f"feed {feed.name} (kind {feed.kind}) is not fetched over HTTP")
        self.feed = feed
        self.url: str = feed.url
        self._fetcher = fetcher
        self._ingestor = ingestor
        self._repository = repository
        self._engine: AsyncEngine = repository.engine
        self._parsers = parsers
        self._link_limit = link_limit
        self._withdraw = withdraw
        self._listeners = tuple(listeners)
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._host_ok = allowed_host_check(feed.url, feed.allowed_hosts)
        self._actor = f"feed:{feed.name}"
        self.lease = FeedLease(feed, repository, owner, clock=clock)
        self._state: FeedState | None = None
        self._quiet = quiet_writer
        self._metrics = metrics if metrics is not None else process_metrics()
        self._primed = False

    # ----------------------------------------------------------------- loop

    async def run(self) -> None:
        """Poll until cancelled; on cancellation give the lease up for a standby instance."""
        log.info("feed.polling", feed=self.feed.name, url=self.url, every_s=self.feed.interval_s)
        try:
            await asyncio.sleep(await self._first_delay())
            while True:
                outcome = await self.poll_once()
                await asyncio.sleep(self._delay_after(outcome))
        finally:
            await asyncio.shield(self.lease.release())

    def prime(self, state: FeedState | None, granted: FeedState | None) -> None:
        """Start from a state (and a lease) read for many feeds at once (:meth:`Poller.run`)."""
        self._primed = True
        self._state = granted or state
        if granted is not None:
            self.lease.granted(granted)

    async def _first_delay(self) -> float:
        """Resume a restart's schedule; otherwise start within the first jitter window."""
        state = self._state
        if not self._primed:
            try:
                state = await self._repository.get(self.feed.name)
            except StoreError as exc:
                log.warning("feed.state_unreadable", feed=self.feed.name, reason=str(exc))
        now = self._clock()
        if state is not None and state.next_poll_at is not None and state.next_poll_at > now:
            return min((state.next_poll_at - now).total_seconds(), self.feed.max_backoff_s)
        return self._rng.uniform(0, self.feed.interval_s * max(self.feed.jitter, 0.01))

    def _delay_after(self, outcome: PollOutcome) -> float:
        now = self._clock()
        if outcome.status == "skipped" and outcome.next_poll_at is not None:
            return max((outcome.next_poll_at - now).total_seconds(), 0.0)
        if outcome.status == "skipped":
            # Another instance holds the feed: try again in an interval, or as soon as
            # its lease runs out if that comes first.
            wait = self.feed.interval_s
            until = self.lease.holder_until
            if until is not None and until > now:
                wait = min(wait, (until - now).total_seconds() + 0.1)
            return wait * (1 + self._rng.uniform(0, self.feed.jitter))
        if outcome.next_poll_at is not None:
            return max((outcome.next_poll_at - now).total_seconds(), 0.0)
        failures = (self._state.consecutive_failures if self._state else 0) + 1
        return next_delay_s(self.feed, failures, self._rng)

    # ----------------------------------------------------------------- one poll

    async def poll_once(self, *, use_lease: bool = True, on_schedule: bool = True) -> PollOutcome:
        """Poll now. Never raises, except on cancellation: failures are outcomes.

        ``use_lease`` False polls without taking the lease (an operator's
        ``alertcast feeds poll --force``); ``on_schedule`` False polls even
        when the feed's next poll, planned by whichever instance polled it
        last, is still ahead (``alertcast feeds poll --once``). Every outcome
        is counted in ``alertcast_feed_polls_total`` by its status.
        """
        outcome = await self._poll_once(use_lease=use_lease, on_schedule=on_schedule)
        self._metrics.feed_polled(outcome.feed, outcome.status)
        return outcome

    async def _poll_once(self, *, use_lease: bool, on_schedule: bool) -> PollOutcome:
        name = self.feed.name
        structlog.contextvars.bind_contextvars(feed=name)
        try:
            if use_lease:
                if await self._take_lease() is None:
                    return PollOutcome(name, "skipped", holder=self.lease.holder)
            else:
                self._state = await self._repository.get(name) or FeedState(feed=name)
            planned = self._state.next_poll_at if self._state else None
            if on_schedule and planned is not None and planned - self._clock() > _EARLY:
                # Taken over from an instance that already polled in this interval.
                return PollOutcome(name, "skipped", next_poll_at=planned)
            async with self.lease.keepalive():
                return await self._poll(use_lease=use_lease)
        except StoreError as exc:
            # The database is unreachable: nothing can be recorded; try again later.
            log.error("feed.store_unavailable", reason=str(exc))
            return PollOutcome(name, "failed", error=str(exc))
        finally:
            structlog.contextvars.unbind_contextvars("feed")

    async def _take_lease(self) -> FeedState | None:
        now = self._clock()
        if self._state is not None and self.lease.held(now):
            return self._state
        state = await self.lease.acquire()
        if state is not None:
            self._state = state
        return state

    async def _poll(self, *, use_lease: bool) -> PollOutcome:
        feed = self.feed
        state = self._state or FeedState(feed=feed.name)
        started = self._clock()
        try:
            result = await self._fetcher.fetch(
                self.url,
                feed=feed.name,
                timeout_s=feed.timeout_s,
                max_bytes=feed.max_bytes,
                etag=state.etag,
                last_modified=state.last_modified,
                headers=feed.headers,
                host_ok=self._host_ok,
            )
            if result.not_modified:
                return await self._succeeded(
                    "not-modified", changed=False, validators=None, use_lease=use_lease
                )
            validators = Validators(result.etag, result.last_modified, result.sha256)
            if state.content_sha256 == validators.content_sha256:
                return await self._succeeded(
                    "unchanged", changed=False, validators=validators, use_lease=use_lease
                )
            parser = self._parsers(feed.kind)
            batch = await asyncio.to_thread(parser.parse, result.body, feed)
        except FeedError as exc:
            retry_after = exc.retry_after if isinstance(exc, FetchError) else None
            return await self._failed(exc.reason, use_lease=use_lease, retry_after=retry_after)
        except StoreError:
            raise
        except Exception as exc:  # a parser's bug must not stop the poller; it is shown
            log.exception("feed.poll_crashed")
            return await self._failed(
                f"internal error while reading the feed: {type(exc).__name__}: {exc}",
                use_lease=use_lease,
            )
        try:
            handled = await self._handle(batch, started)
        except StoreError:
            raise
        except Exception as exc:  # a bug while handling must not stop the poller; it is shown
            log.exception("feed.poll_crashed")
            return await self._failed(
                f"internal error while handling the feed: {type(exc).__name__}: {exc}",
                use_lease=use_lease,
            )
        return await self._succeeded(
            "changed",
            changed=True,
            validators=validators if handled.complete else None,
            use_lease=use_lease,
            handled=handled,
        )

    # ----------------------------------------------------------------- handling a batch

    async def _handle(self, batch: FeedBatch, now: datetime) -> _Handled:
        feed = self.feed
        handled = _Handled(errors=list(batch.errors))
        for warning in batch.warnings:
            log.info("feed.warning", warning=warning)
        for error in batch.errors:
            log.warning("feed.entry_error", error=error)
        known = await self._repository.entries(feed.name)
        entry_rows: list[_EntryRow] = []

        for item in batch.items:
            entry_id = str(item.alert.key)
            digest = hashlib.sha256(item.raw).hexdigest()
            entry = known.get(entry_id)
            if entry is not None and entry.content_sha256 == digest:
                continue  # these very bytes were taken from this feed before
            taken, alert_id = await self._ingest(item, handled)
            if not taken:
                continue  # not remembered: offered again next time
            entry_rows.append(_EntryRow(entry_id, alert_id=alert_id, content_sha256=digest))
            handled.first_seen += entry is None

        if batch.links:
            linked = self._linked()
            results = await linked.fetch_all(feed, batch.links, known, now=now)
            for link_result in results:
                await self._take_link(link_result, known, handled, entry_rows)

        present = set(batch.listed)
        present.update(str(item.alert.key) for item in batch.items)
        present.update(link.url for link in batch.links)
        await self._record_entries(entry_rows, present, known, now)
        if batch.complete:
            handled.withdrawn = await self._withdraw_gone(present, now)
        return handled

    def _linked(self) -> LinkedFetcher:
        return LinkedFetcher(self._fetcher, self._parsers("cap"), shared_limit=self._link_limit)

    async def _take_link(
        self,
        result: LinkResult,
        known: dict[str, FeedEntry],
        handled: _Handled,
        entry_rows: list[_EntryRow],
    ) -> None:
        url = result.link.url
        entry = known.get(url)
        if result.status in ("known", "unchanged", "expired"):
            if result.status == "unchanged" and entry is not None and entry.etag != result.etag:
                entry_rows.append(_EntryRow(url, link=url, etag=result.etag))
            if result.status == "expired" and entry is None:
                entry_rows.append(_EntryRow(url, link=url))
                handled.first_seen += 1
            return
        if result.status in ("refused", "failed"):
            handled.errors.append(result.error or f"link {url} could not be fetched")
            # A refusal is final (the same link is refused again); a failed fetch is
            # not, so the document is read again next time to retry it.
            handled.complete = handled.complete and result.status == "refused"
            if entry is None:
                entry_rows.append(_EntryRow(url, link=url))
                handled.first_seen += 1
            return
        handled.links_fetched += 1
        for warning in result.warnings:
            log.info("feed.link_warning", url=url, warning=warning)
        first_alert: int | None = None
        all_taken = True
        for item in result.items:
            taken, alert_id = await self._ingest(item, handled)
            all_taken = all_taken and taken
            first_alert = first_alert if first_alert is not None else alert_id
        if not all_taken:
            return  # not remembered as fetched: the link is fetched again next time
        entry_rows.append(
            _EntryRow(
                url,
                link=url,
                alert_id=first_alert,
                etag=result.etag,
                content_sha256=result.content_sha256,
            )
        )
        handled.first_seen += entry is None

    async def _ingest(self, item: FeedItem, handled: _Handled) -> tuple[bool, int | None]:
        """Offer one item to the ingest stage: (taken, its alert id).

        Not taken means an unexpected error: the item is not remembered, and
        the document is read again next poll to offer it again. An item the
        ingest stage refused (and audited) counts as taken, without an alert:
        the same bytes would be refused again.
        """
        handled.items += 1
        try:
            outcome = await self._ingestor.ingest_item(item, feed=self.feed.name, actor=self._actor)
        except StoreError:
            raise
        except Exception as exc:  # one bad item never hides the others; it is shown
            log.exception("feed.item_failed", alert=str(item.alert.key))
            handled.errors.append(f"alert {item.alert.key}: {type(exc).__name__}: {exc}")
            handled.complete = False
            return False, None
        if outcome.created:
            handled.new += 1
            handled.alert_keys.append(str(outcome.key))
        else:
            handled.known += 1
        return True, outcome.alert_id

    async def _record_entries(
        self,
        rows: list[_EntryRow],
        present: set[str],
        known: dict[str, FeedEntry],
        now: datetime,
    ) -> None:
        written = {row.entry_id for row in rows}
        touch = [entry_id for entry_id in present if entry_id in known and entry_id not in written]
        with database_errors(f"cannot record the entries of feed {self.feed.name}"):
            async with self._engine.begin() as conn:
                for row in rows:
                    await feed_state_sql.upsert_entry(
                        conn,
                        self.feed.name,
                        row.entry_id,
                        now=now,
                        alert_id=row.alert_id,
                        link=row.link,
                        etag=row.etag,
                        content_sha256=row.content_sha256,
                    )
                await feed_state_sql.touch_entries(conn, self.feed.name, touch, now=now)

    async def _withdraw_gone(self, present: set[str], now: datetime) -> int:
        with database_errors(f"cannot record the entries of feed {self.feed.name}"):
            async with self._engine.begin() as conn:
                gone = await feed_state_sql.mark_gone(conn, self.feed.name, present, now=now)
                await feed_state_sql.prune_gone(conn, self.feed.name, before=now - ENTRY_MEMORY)
        alert_ids = [entry.alert_id for entry in gone if entry.alert_id is not None]
        if not alert_ids:
            return 0
        withdrawn = await self._withdraw(
            self._engine, alert_ids=alert_ids, feed=self.feed.name, now=now
        )
        log.info("feed.withdrawn", gone=len(gone), withdrawn=withdrawn)
        return withdrawn

    # ----------------------------------------------------------------- recording

    def _lease_until(self, next_poll_at: datetime) -> datetime:
        return next_poll_at + timedelta(seconds=grace_s(self.feed))

    async def _succeeded(
        self,
        status: PollStatus,
        *,
        changed: bool,
        validators: Validators | None,
        use_lease: bool,
        handled: _Handled | None = None,
    ) -> PollOutcome:
        now = self._clock()
        next_poll_at = now + timedelta(seconds=next_delay_s(self.feed, 0, self._rng))
        lease_until = self._lease_until(next_poll_at) if use_lease else None
        owner = self.lease.owner if use_lease else None
        recorded: feed_health.Recorded | None = None
        quiet = handled is None and not changed and self._quiet is not None
        if quiet and self._state is not None and self._state.consecutive_failures == 0:
            assert self._quiet is not None
            state = await self._quiet.record(
                self.feed.name,
                now=now,
                validators=validators,
                next_poll_at=next_poll_at,
                owner=owner,
                lease_until=lease_until,
            )
            recorded = feed_health.Recorded(state, None) if state is not None else None
        if recorded is None:
            recorded = await feed_health.record_success(
                self._engine,
                self.feed,
                now=now,
                changed=changed,
                validators=validators,
                new_items=handled.first_seen if handled else 0,
                next_poll_at=next_poll_at,
                owner=owner,
                lease_until=lease_until,
                listeners=self._listeners,
            )
        self._after_record(recorded, lease_until)
        outcome = PollOutcome(
            self.feed.name,
            status,
            items=handled.items if handled else 0,
            new=handled.new if handled else 0,
            known=handled.known if handled else 0,
            links_fetched=handled.links_fetched if handled else 0,
            withdrawn=handled.withdrawn if handled else 0,
            errors=tuple(handled.errors) if handled else (),
            next_poll_at=next_poll_at,
            alert_keys=tuple(handled.alert_keys) if handled else (),
        )
        # A poll that found nothing new is routine: it is logged at debug level.
        (log.info if changed else log.debug)(
            "feed.polled",
            status=status,
            items=outcome.items,
            new=outcome.new,
            links_fetched=outcome.links_fetched,
            withdrawn=outcome.withdrawn,
            errors=len(outcome.errors),
        )
        return outcome

    async def _failed(
        self, reason: str, *, use_lease: bool, retry_after: float | None = None
    ) -> PollOutcome:
        now = self._clock()
        failures = (self._state.consecutive_failures if self._state else 0) + 1
        delay = next_delay_s(self.feed, failures, self._rng, retry_after=retry_after)
        next_poll_at = now + timedelta(seconds=delay)
        lease_until = self._lease_until(next_poll_at) if use_lease else None
        recorded = await feed_health.record_failure(
            self._engine,
            self.feed,
            now=now,
            error=reason,
            next_poll_at=next_poll_at,
            owner=self.lease.owner if use_lease else None,
            lease_until=lease_until,
            listeners=self._listeners,
        )
        self._after_record(recorded, lease_until)
        failures = recorded.state.consecutive_failures if recorded else failures
        log.warning("feed.poll_failed", reason=reason, failures=failures, retry_in_s=round(delay))
        return PollOutcome(self.feed.name, "failed", error=reason, next_poll_at=next_poll_at)

    def _after_record(
        self, recorded: feed_health.Recorded | None, lease_until: datetime | None
    ) -> None:
        if recorded is None:
            self.lease.lost()
            self._state = None
            return
        self._state = recorded.state
        if lease_until is not None:
            self.lease.extended_to(lease_until)


@dataclass(frozen=True, slots=True)
class _EntryRow:
    """An entry to write; None fields keep what is stored."""

    entry_id: str
    alert_id: int | None = None
    link: str | None = None
    etag: str | None = None
    content_sha256: str | None = None


@dataclass
class _Handled:
    """Running totals while one batch is handled."""

    errors: list[str] = field(default_factory=list)
    items: int = 0
    new: int = 0
    known: int = 0
    links_fetched: int = 0
    withdrawn: int = 0
    first_seen: int = 0
    complete: bool = True
    alert_keys: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- all feeds


class Poller:
    """Runs every enabled feed: fetched kinds with :class:`FeedPoller`, drop folders as before."""

    def __init__(
        self,
        feeds: Sequence[FeedConfig],
        *,
        fetcher: HttpFetcher,
        ingestor: ItemIngestor,
        repository: FeedStateRepository,
        drop_folders: Sequence[DropFolderFeed] = (),
        owner: str | None = None,
        parsers: ParserLookup = default_parsers,
        withdraw: Withdraw = lifecycle.withdraw,
        listeners: Sequence[HealthListener] = (),
        clock: Clock = utc_now,
        metrics: Metrics | None = None,
    ) -> None:
        self.owner = owner or instance_id()
        self._repository = repository
        self._clock = clock
        link_limit = asyncio.Semaphore(SHARED_LINK_LIMIT)
        self.quiet_writer = QuietSuccessWriter(repository.engine)
        self.feeds = [
            FeedPoller(
                feed,
                fetcher=fetcher,
                ingestor=ingestor,
                repository=repository,
                owner=self.owner,
                parsers=parsers,
                link_limit=link_limit,
                withdraw=withdraw,
                listeners=listeners,
                clock=clock,
                quiet_writer=self.quiet_writer,
                metrics=metrics,
            )
            for feed in feeds
            if feed.enabled and feed.fetched
        ]
        self.drop_folders = list(drop_folders)

    async def run(self) -> None:
        """Run every feed's task until cancelled."""
        await self._claim()
        try:
            async with asyncio.TaskGroup() as group:
                for poller in self.feeds:
                    group.create_task(_guarded(poller.feed.name, poller.run), name=poller.feed.name)
                for folder in self.drop_folders:
                    group.create_task(_guarded(folder.feed.name, folder.run), name=folder.feed.name)
        finally:
            await asyncio.shield(self.quiet_writer.aclose())

    async def _claim(self) -> None:
        """Read every feed's state and take the free leases in one go, before the tasks start.

        Each task would otherwise read its state and take its lease in a
        transaction of its own; with many feeds, that is a burst of writes at
        every start. A failure here only means each task does it itself.
        """
        if not self.feeds:
            return
        try:
            current = await self._repository.all()
            now = self._clock()
            grants: dict[str, datetime] = {}
            for poller in self.feeds:
                state = current.get(poller.feed.name)
                starts = state.next_poll_at if state and state.next_poll_at else now
                grace = timedelta(seconds=grace_s(poller.feed))
                grants[poller.feed.name] = max(starts, now) + grace
            granted = await self._repository.acquire_leases(grants, owner=self.owner, now=now)
        except StoreError as exc:
            log.warning("feed.claim_failed", reason=str(exc))
            return
        for poller in self.feeds:
            poller.prime(current.get(poller.feed.name), granted.get(poller.feed.name))
        log.info("feed.claimed", feeds=len(self.feeds), leases=len(granted), owner=self.owner)


async def _guarded(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run one feed's task; an unexpected crash is logged and the task restarted."""
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one feed's bug stop the others
            log.exception("feed.task_crashed", feed=name)
            await asyncio.sleep(5)
