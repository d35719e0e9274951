"""Is each feed working? Health from the feed's state, and warnings when it stops.

A feed can fail loudly (the server answers 500, the document is HTML) or
quietly (it answers, but nothing has changed for far longer than it ever
goes quiet: a stuck publisher). Both matter to an office that counts on the
feed for warnings, so health shows both:

* **failing**: the last poll failed; ``consecutive_failures`` counts them and
  ``last_error`` says why, for people;
* **unhealthy**: it failed ``failure_threshold`` times in a row (3 by
  default). Crossing the threshold writes a ``feed.unhealthy`` audit record
  and a warning log line, once per episode; the first success after that
  writes ``feed.recovered``. The audit record is written in the same
  transaction as the state, so neither is ever recorded without the other;
* **stale**: no change for longer than ``stale_after_s`` (three intervals by
  default). A feed that never changed, or was never read, is stale too.

Listeners (a channel message to the operators, once channels can speak) are
called after the transaction commits with the same :class:`HealthEvent`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.config import FeedConfig
from alertcast.store import feed_state
from alertcast.store.engine import database_errors
from alertcast.store.feed_state import FeedState, Validators

log = structlog.get_logger(__name__)

UNHEALTHY_ACTION: Final = "feed.unhealthy"
RECOVERED_ACTION: Final = "feed.recovered"
HEALTH_ACTOR = "alertcast:poller"
STALE_INTERVALS = 3
"""Without ``stale_after_s``, a feed is stale after this many intervals without a change."""

RecordedAction = Literal["feed.unhealthy", "feed.recovered"]
Status = Literal["ok", "stale", "failing", "unhealthy", "never polled", "disabled", "push"]


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """A feed crossed the failure threshold, or came back after crossing it."""

    action: RecordedAction
    feed: str
    failures: int
    reason: str | None
    at: datetime


HealthListener = Callable[[HealthEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """What ``alertcast feeds list`` shows for one feed."""

    name: str
    kind: str
    enabled: bool
    status: Status
    stale: bool
    unhealthy: bool
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_change_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    items_seen: int
    next_poll_at: datetime | None
    lease_owner: str | None

    def to_json(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "name": self.name,
            "kind": self.kind,
            "enabled": self.enabled,
            "status": self.status,
            "stale": self.stale,
            "unhealthy": self.unhealthy,
            "last_attempt_at": when(self.last_attempt_at),
            "last_success_at": when(self.last_success_at),
            "last_change_at": when(self.last_change_at),
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "items_seen": self.items_seen,
            "next_poll_at": when(self.next_poll_at),
            "lease_owner": self.lease_owner,
        }


def stale_after(feed: FeedConfig) -> timedelta:
    """How long without a change makes ``feed`` stale."""
    seconds = feed.stale_after_s
    if seconds is None:
        seconds = STALE_INTERVALS * feed.interval_s
    return timedelta(seconds=seconds)


def is_stale(feed: FeedConfig, state: FeedState | None, now: datetime) -> bool:
    """No change for longer than the feed's expected cadence (or none ever seen)."""
    if state is None or state.last_change_at is None:
        return True
    return now - state.last_change_at > stale_after(feed)


def health_of(feed: FeedConfig, state: FeedState | None, now: datetime) -> FeedHealth:
    """The health of ``feed`` given its stored state (None when never polled)."""
    current = state or FeedState(feed=feed.name)
    polled = current.last_attempt_at is not None
    stale = is_stale(feed, state, now) if polled else False
    unhealthy = current.consecutive_failures >= feed.failure_threshold
    status: Status
    if feed.kind == "push":
        status = "push"
    elif not feed.enabled:
        status = "disabled"
    elif not polled:
        status = "never polled"
    elif unhealthy:
        status = "unhealthy"
    elif current.consecutive_failures:
        status = "failing"
    elif stale:
        status = "stale"
    else:
        status = "ok"
    return FeedHealth(
        name=feed.name,
        kind=feed.kind,
        enabled=feed.enabled,
        status=status,
        stale=stale,
        unhealthy=unhealthy,
        last_attempt_at=current.last_attempt_at,
        last_success_at=current.last_success_at,
        last_change_at=current.last_change_at,
        consecutive_failures=current.consecutive_failures,
        last_error=current.last_error,
        items_seen=current.items_seen,
        next_poll_at=current.next_poll_at,
        lease_owner=current.lease_owner,
    )


def crossed(feed: FeedConfig, before: FeedState, after: FeedState) -> RecordedAction | None:
    """Which warning, if any, the change from ``before`` to ``after`` calls for."""
    threshold = feed.failure_threshold
    if before.consecutive_failures < threshold <= after.consecutive_failures:
        return UNHEALTHY_ACTION
    if before.consecutive_failures >= threshold and after.consecutive_failures == 0:
        return RECOVERED_ACTION
    return None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording a poll did: the state after it, and the warning it raised, if any."""

    state: FeedState
    event: HealthEvent | None


async def record_success(
    engine: AsyncEngine,
    feed: FeedConfig,
    *,
    now: datetime,
    changed: bool,
    validators: Validators | None,
    new_items: int,
    next_poll_at: datetime,
    owner: str | None,
    lease_until: datetime | None,
    listeners: Sequence[HealthListener] = (),
) -> Recorded | None:
    """Record a poll that worked; None when ``owner`` no longer holds the feed's lease."""
    with database_errors(f"cannot record the poll of feed {feed.name}"):
        async with engine.begin() as conn:
            result = await feed_state.record_success(
                conn,
                feed.name,
                now=now,
                changed=changed,
                validators=validators,
                new_items=new_items,
                next_poll_at=next_poll_at,
                owner=owner,
                lease_until=lease_until,
            )
            if result is None:
                return None
            before, after = result
            event = None
            if crossed(feed, before, after) == RECOVERED_ACTION:
                event = HealthEvent(
                    RECOVERED_ACTION, feed.name, before.consecutive_failures, None, now
                )
                await audit.append(
                    conn,
                    actor=HEALTH_ACTOR,
                    action=RECOVERED_ACTION,
                    subject=f"feed:{feed.name}",
                    data={
                        "failures": before.consecutive_failures,
                        "last_error": before.last_error,
                        "last_success_before": (
                            before.last_success_at.isoformat() if before.last_success_at else None
                        ),
                    },
                    at=now,
                )
    if event is not None:
        log.warning("feed.recovered", feed=feed.name, failures=event.failures)
        await _tell(listeners, event)
    return Recorded(after, event)


async def record_failure(
    engine: AsyncEngine,
    feed: FeedConfig,
    *,
    now: datetime,
    error: str,
    next_poll_at: datetime,
    owner: str | None,
    lease_until: datetime | None,
    listeners: Sequence[HealthListener] = (),
) -> Recorded | None:
    """Record a failed poll; None when ``owner`` no longer holds the feed's lease."""
    with database_errors(f"cannot record the poll of feed {feed.name}"):
        async with engine.begin() as conn:
            result = await feed_state.record_failure(
                conn,
                feed.name,
                now=now,
                error=error,
                next_poll_at=next_poll_at,
                owner=owner,
                lease_until=lease_until,
            )
            if result is None:
                return None
            before, after = result
            event = None
            if crossed(feed, before, after) == UNHEALTHY_ACTION:
                event = HealthEvent(
                    UNHEALTHY_ACTION, feed.name, after.consecutive_failures, error, now
                )
                await audit.append(
                    conn,
                    actor=HEALTH_ACTOR,
                    action=UNHEALTHY_ACTION,
                    subject=f"feed:{feed.name}",
                    data={
                        "failures": after.consecutive_failures,
                        "threshold": feed.failure_threshold,
                        "reason": error,
                        "last_success_at": (
                            after.last_success_at.isoformat() if after.last_success_at else None
                        ),
                    },
                    at=now,
                )
    if event is not None:
        log.warning(
            "feed.unhealthy",
            feed=feed.name,
            failures=event.failures,
            reason=error,
            url=feed.url,
        )
        await _tell(listeners, event)
    return Recorded(after, event)


async def _tell(listeners: Sequence[HealthListener], event: HealthEvent) -> None:
    for listener in listeners:
        try:
            await listener(event)
        except Exception:  # a broken notifier must not stop the poller; it is logged
            log.exception("feed.health_listener_failed", feed=event.feed, action=event.action)
