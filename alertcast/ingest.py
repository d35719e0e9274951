"""Ingest: bytes or feed items from anywhere become stored alerts, or a recorded refusal.

Every source of CAP (a feed poller, a drop folder, an issuer's push, an
officer's upload) goes through here, so the rules are the same for all: parse
leniently (or strictly when configured), store idempotently on the alert key,
apply the CAP lifecycle (:mod:`alertcast.lifecycle`) in the same transaction,
and leave an audit record either way. A document that cannot be read is
logged *and* audited with the reason, and never stops the documents that come
after it.

Listeners hear about an alert once, when it is stored for the first time and
is in force: an alert whose Cancel arrived first, or that had already expired
on arrival, is stored and audited but never announced.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog

from alertcast import audit, lifecycle
from alertcast.cap import ParsedAlert, parse_cap_all
from alertcast.config import FeedConfig
from alertcast.domain import Alert, AlertKey
from alertcast.errors import CapError
from alertcast.store.alerts import AlertRepository, AlertState

log = structlog.get_logger(__name__)

NewAlertListener = Callable[[Alert, str], Awaitable[None]]
"""Called once per alert stored for the first time and in force, with the source name."""

Clock = Callable[[], datetime]

EffectListener = Callable[["ItemOutcome"], Awaitable[None]]
"""Called after a message's lifecycle effects committed (``outcome.effects`` not empty),
e.g. to cancel the pending deliveries of the alerts it cancelled or superseded."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class IncomingItem(Protocol):
    """What the ingest stage reads from a feed item (``alertcast.feeds.base.FeedItem``).

    Declared here, structurally, so that the core does not import the feed adapters.
    """

    @property
    def alert(self) -> Alert: ...

    @property
    def raw(self) -> bytes: ...

    @property
    def warnings(self) -> tuple[str, ...]: ...

    @property
    def cap_version(self) -> str | None: ...

    @property
    def thread(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """What became of one alert: stored now or known already, and what it changed.

    ``effects`` lists the lifecycle changes it caused, e.g. ``("cancelled 12",
    "superseded 9")`` (new state, alert id); ``state`` is the alert's own state
    afterwards.
    """

    key: AlertKey
    created: bool
    alert_id: int | None
    effects: tuple[str, ...] = ()
    state: AlertState | None = None
    content_differs: bool = False


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What became of one document: the alerts it held (new or already known), or an error."""

    source: str
    new: tuple[Alert, ...] = ()
    known: tuple[Alert, ...] = ()
    error: str | None = None
    items: tuple[ItemOutcome, ...] = ()
    """One per alert of the document, in document order."""


class Ingestor:
    """Parses, stores, applies the lifecycle and announces alerts, from one place in the code.

    ``feeds`` gives the lifecycle its per-feed settings (``mapping.delegates``);
    ``clock`` is what "now" means for expiry, so tests can replay old alerts.
    """

    def __init__(
        self,
        repository: AlertRepository,
        *,
        strict: bool = False,
        max_bytes: int = 5 * 1024 * 1024,
        listeners: tuple[NewAlertListener, ...] = (),
        feeds: Sequence[FeedConfig] = (),
        clock: Clock = utc_now,
        effect_listeners: tuple[EffectListener, ...] = (),
    ) -> None:
        self._repository = repository
        self._effect_listeners = effect_listeners
        self._strict = strict
        self._max_bytes = max_bytes
        self._listeners = listeners
        self._policy = lifecycle.LifecyclePolicy.from_feeds(feeds)
        self._clock = clock

    @property
    def repository(self) -> AlertRepository:
        return self._repository

    async def parse(
        self, data: bytes, *, source: str, actor: str, feed: str | None = None
    ) -> list[ParsedAlert]:
        """Parse ``data`` off the event loop; a refusal is logged and audited, then raised."""
        try:
            return await asyncio.to_thread(
                parse_cap_all, data, strict=self._strict, max_bytes=self._max_bytes
            )
        except CapError as exc:
            log.error("cap.rejected", source=source, feed=feed, reason=str(exc))
            await audit.record(
                self._repository.engine,
                actor=actor,
                action="cap.rejected",
                subject=source,
                data={
                    "reason": str(exc),
                    "path": exc.path,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "feed": feed,
                },
            )
            raise

    async def ingest_bytes(
        self, data: bytes, *, source: str, actor: str, feed: str | None = None
    ) -> IngestOutcome:
        """Parse ``data`` and store every alert in it; refusals are audited, never raised."""
        try:
            parsed = await self.parse(data, source=source, actor=actor, feed=feed)
        except CapError as exc:
            return IngestOutcome(source=source, error=str(exc))
        return await self.store_parsed(parsed, data, source=source, actor=actor, feed=feed)

    async def store_parsed(
        self,
        parsed: Sequence[ParsedAlert],
        raw: bytes,
        *,
        source: str,
        actor: str,
        feed: str | None = None,
    ) -> IngestOutcome:
        """Store alerts already parsed from ``raw`` (every one keeps the whole document)."""
        new: list[Alert] = []
        known: list[Alert] = []
        items: list[ItemOutcome] = []
        announce: list[Alert] = []
        for item in parsed:
            outcome, stored = await self._store(
                item.alert,
                raw,
                source=source,
                actor=actor,
                feed=feed,
                thread=None,
                warnings=(*item.warnings, *item.notices),
                cap_version=item.cap_version,
            )
            items.append(outcome)
            (new if outcome.created else known).append(stored)
            if _to_announce(outcome):
                announce.append(stored)
        await self._announce(announce, source)
        return IngestOutcome(source=source, new=tuple(new), known=tuple(known), items=tuple(items))

    async def ingest_item(
        self, item: IncomingItem, *, feed: str, actor: str, source: str | None = None
    ) -> ItemOutcome:
        """Store one feed item, linking it to its thread when it has no references."""
        outcome, stored = await self._store(
            item.alert,
            item.raw,
            source=source or feed,
            actor=actor,
            feed=feed,
            thread=item.thread,
            warnings=item.warnings,
            cap_version=item.cap_version or "",
        )
        if _to_announce(outcome):
            await self._announce([stored], source or feed)
        return outcome

    async def _announce(self, alerts: Sequence[Alert], source: str) -> None:
        """Tell the listeners; one failing listener never stops the others or the ingest."""
        for alert in alerts:
            for listener in self._listeners:
                try:
                    await listener(alert, source)
                except Exception:
                    log.exception("alert.listener_failed", alert=str(alert.key), source=source)

    async def _store(
        self,
        alert: Alert,
        raw: bytes,
        *,
        source: str,
        actor: str,
        feed: str | None,
        thread: str | None,
        warnings: Sequence[str],
        cap_version: str,
    ) -> tuple[ItemOutcome, Alert]:
        stored = await lifecycle.ingest_alert(
            self._repository.engine,
            alert,
            raw=raw,
            source=source,
            actor=actor,
            now=self._clock(),
            warnings=warnings,
            cap_version=cap_version,
            feed=feed,
            thread=thread,
            policy=self._policy,
        )
        result = stored.result
        log.info(
            "alert.ingested" if result.created else "alert.already_known",
            source=source,
            feed=feed,
            alert=str(result.key),
            status=alert.status.value,
            msg_type=alert.msg_type.value,
            state=result.state.value,
            effects=list(result.effects),
            warnings=len(stored.warnings),
        )
        outcome = ItemOutcome(
            key=result.key,
            created=result.created,
            alert_id=result.alert_id,
            effects=result.effects,
            state=result.state,
            content_differs=result.content_differs,
        )
        if outcome.effects:
            await self._tell_effects(outcome)
        return outcome, stored.alert

    async def _tell_effects(self, outcome: ItemOutcome) -> None:
        """Tell the effect listeners; one failing never stops the others or the ingest."""
        for listener in self._effect_listeners:
            try:
                await listener(outcome)
            except Exception:
                log.exception("alert.effect_listener_failed", alert=str(outcome.key))


def _to_announce(outcome: ItemOutcome) -> bool:
    """Announce alerts stored now and in force; log the ones kept quiet."""
    if not outcome.created:
        return False
    if outcome.state is AlertState.ACTIVE:
        return True
    log.info("alert.not_announced", alert=str(outcome.key), state=str(outcome.state))
    return False
