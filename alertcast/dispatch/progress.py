"""How far an alert's fan-out has gone: per channel, counts by state, current rate and ETA.

An operator watching a tsunami warning go out needs three figures per channel:
how many recipients are done, how fast it is moving now, and when it will be
over. ``alertcast status`` and ``GET /api/v1/alerts/{id}/progress`` both show
what :func:`alert_progress` returns, so the terminal and the API never disagree.

How the figures are read, and why:

* **One query.** A single aggregate over the alert's rows, grouped by channel
  and state, returns the counts, the oldest ``created_at`` still waiting and,
  through conditional aggregates, how many rows finished inside the window and
  when the first of them did. One pass over the alert's rows (found through the
  ``(alert_id, channel, target)`` unique index) instead of a second scan for
  the window; it is a read-only transaction that never queues behind writers.
* **Current rate** counts rows that reached a finished state (sent, delivered,
  failed, dead, unknown) with ``updated_at`` in ``(now - window_s, now]``.
  Cancelled rows finish without a send, so they are left out of the rate:
  cancelling 100 000 rows must not promise a fast ETA for the rest. The count
  is divided by the time the window actually covers: from the first of those
  rows to ``now`` (at least one second, at most ``window_s``), so a fan-out
  that began five seconds ago shows its real speed, not a twelfth of it.
* **ETA** is ``remaining / rate`` (remaining = pending + claimed). When the
  channel's rate limit is known it caps the rate used (a burst does not last),
  and before the channel's first send it gives an ETA by itself. With no limit
  and no rate, or a fan-out that stalled, the ETA is unknown (None): a made-up
  figure would be worse than none.
* **The alert as a whole** sends on its channels in parallel: its rate is the
  sum of theirs and its ETA the longest of theirs (unknown when any channel
  still waiting has none).

Every figure depends only on the rows and ``now``, so an injected ``now`` gives
the same answer every time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.config import ChannelConfig
from alertcast.ratelimit import limits_for
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import DELIVERY_STATES, alerts, deliveries

__all__ = [
    "RATE_STATES",
    "REMAINING_STATES",
    "AlertNotFound",
    "AlertProgress",
    "ChannelProgress",
    "alert_progress",
    "channel_rate_limits",
]

REMAINING_STATES = ("pending", "claimed")
"""States a worker will still act on: what the ETA waits for."""

RATE_STATES = ("sent", "delivered", "failed", "dead", "unknown")
"""Finished states reached by an attempt: the rows that make the current rate."""

_MIN_SPAN_S = 1.0
"""Shortest time a rate is measured over, so one row a moment ago is not 1000/s."""


class AlertNotFound(LookupError):
    """The alert does not exist (as opposed to existing with no deliveries yet)."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} does not exist")
        self.alert_id = alert_id


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _all_states(counts: Mapping[str, int]) -> dict[str, int]:
    """Every state, zeros included, in ledger order: a stable shape for the JSON."""
    known = {state: int(counts.get(state, 0)) for state in DELIVERY_STATES}
    known.update({s: int(n) for s, n in counts.items() if s not in known})
    return known


@dataclass(frozen=True, slots=True)
class ChannelProgress:
    """One channel's figures. ``done`` counts every finished row, cancelled included."""

    channel: str
    counts: dict[str, int]
    total: int
    done: int
    rate_per_s: float
    eta_s: float | None
    oldest_pending_age_s: float | None
    rate_limit_per_s: float | None = None

    @property
    def remaining(self) -> int:
        return self.total - self.done

    @property
    def finished(self) -> bool:
        """True when no row is pending or claimed any more."""
        return self.remaining == 0

    @property
    def fraction(self) -> float:
        """Share done, 0..1 (1 for a channel with no rows)."""
        return self.done / self.total if self.total else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "counts": _all_states(self.counts),
            "total": self.total,
            "done": self.done,
            "remaining": self.remaining,
            "finished": self.finished,
            "rate_per_s": round(self.rate_per_s, 3),
            "eta_s": _round(self.eta_s, 1),
            "oldest_pending_age_s": _round(self.oldest_pending_age_s, 1),
            "rate_limit_per_s": self.rate_limit_per_s,
        }


@dataclass(frozen=True, slots=True)
class AlertProgress:
    """An alert's fan-out at ``at``: per channel (by name) and in total."""

    alert_id: int
    at: datetime
    window_s: float
    channels: tuple[ChannelProgress, ...] = field(default=())

    @property
    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for channel in self.channels:
            for state, n in channel.counts.items():
                totals[state] = totals.get(state, 0) + n
        return totals

    @property
    def total(self) -> int:
        return sum(c.total for c in self.channels)

    @property
    def done(self) -> int:
        return sum(c.done for c in self.channels)

    @property
    def remaining(self) -> int:
        return self.total - self.done

    @property
    def finished(self) -> bool:
        """True when no channel has a row pending or claimed (also when there are no rows)."""
        return self.remaining == 0

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def rate_per_s(self) -> float:
        """Channels send in parallel, so the alert's rate is the sum of theirs."""
        return sum(c.rate_per_s for c in self.channels)

    @property
    def eta_s(self) -> float | None:
        """The slowest channel's ETA; None while any channel still waiting has none."""
        waiting = [c.eta_s for c in self.channels if not c.finished]
        if not waiting:
            return 0.0
        if any(eta is None for eta in waiting):
            return None
        return max(eta for eta in waiting if eta is not None)

    @property
    def oldest_pending_age_s(self) -> float | None:
        ages = [c.oldest_pending_age_s for c in self.channels]
        known = [a for a in ages if a is not None]
        return max(known) if known else None

    def channel(self, name: str) -> ChannelProgress | None:
        return next((c for c in self.channels if c.channel == name), None)

    def to_json(self) -> dict[str, Any]:
        """Counts and figures only: no target, payload or error text is ever in it."""
        return {
            "alert_id": self.alert_id,
            "at": self.at.isoformat(),
            "window_s": self.window_s,
            "finished": self.finished,
            "totals": {
                "counts": _all_states(self.counts),
                "total": self.total,
                "done": self.done,
                "remaining": self.remaining,
                "rate_per_s": round(self.rate_per_s, 3),
                "eta_s": _round(self.eta_s, 1),
                "oldest_pending_age_s": _round(self.oldest_pending_age_s, 1),
            },
            "channels": [c.to_json() for c in self.channels],
        }


def _eta(remaining: int, rate: float, limit: float | None, attempted: int) -> float | None:
    if remaining == 0:
        return 0.0
    if limit is not None and limit > 0:
        if rate > 0:
            return remaining / min(rate, limit)
        if attempted == 0:  # before the first send: the limit is the best guess there is
            return remaining / limit
        return None  # it sent, then stopped: paused, rate-limited or failing
    return remaining / rate if rate > 0 else None


@dataclass(slots=True)
class _Tally:
    counts: dict[str, int] = field(default_factory=dict)
    in_window: int = 0
    window_start: datetime | None = None
    oldest_waiting: datetime | None = None


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


async def alert_progress(
    engine: AsyncEngine,
    alert_id: int,
    *,
    now: datetime | None = None,
    window_s: float = 60.0,
    limits: Mapping[str, float] | None = None,
) -> AlertProgress:
    """The alert's progress at ``now``; raise :class:`AlertNotFound` if there is no such alert.

    ``limits`` maps channel names to their configured global rate (messages per
    second), used to cap the rate behind the ETA and to give one before any send.
    """
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, not {window_s}")
    at = now if now is not None else datetime.now(UTC)
    cutoff = at - timedelta(seconds=window_s)
    c = deliveries.c
    in_window = c.state.in_(RATE_STATES) & (c.updated_at > cutoff) & (c.updated_at <= at)
    query = (
        select(
            c.channel,
            c.state,
            func.count().label("n"),
            func.sum(case((in_window, 1), else_=0)).label("in_window"),
            func.min(case((in_window, c.updated_at), else_=None)).label("window_start"),
            func.min(c.created_at).label("oldest"),
        )
        .where(c.alert_id == alert_id)
        .group_by(c.channel, c.state)
    )
    tallies: dict[str, _Tally] = {}
    with database_errors(f"cannot read the progress of alert {alert_id}"):
        async with read_only(engine) as conn:
            for row in await conn.execute(query):
                tally = tallies.setdefault(row.channel, _Tally())
                tally.counts[row.state] = int(row.n)
                tally.in_window += int(row.in_window or 0)
                tally.window_start = _earliest(tally.window_start, row.window_start)
                if row.state in REMAINING_STATES:
                    tally.oldest_waiting = _earliest(tally.oldest_waiting, row.oldest)
            if not tallies:
                found = await conn.scalar(select(alerts.c.id).where(alerts.c.id == alert_id))
                if found is None:
                    raise AlertNotFound(alert_id)
    channels = []
    for name in sorted(tallies):
        tally = tallies[name]
        total = sum(tally.counts.values())
        remaining = sum(tally.counts.get(s, 0) for s in REMAINING_STATES)
        attempted = sum(tally.counts.get(s, 0) for s in RATE_STATES)
        rate = 0.0
        if tally.in_window and tally.window_start is not None:
            span = (at - tally.window_start).total_seconds()
            rate = tally.in_window / min(window_s, max(_MIN_SPAN_S, span))
        limit = (limits or {}).get(name)
        oldest = tally.oldest_waiting
        channels.append(
            ChannelProgress(
                channel=name,
                counts=dict(tally.counts),
                total=total,
                done=total - remaining,
                rate_per_s=rate,
                eta_s=_eta(remaining, rate, limit, attempted),
                oldest_pending_age_s=(
                    max(0.0, (at - oldest).total_seconds()) if oldest is not None else None
                ),
                rate_limit_per_s=limit,
            )
        )
    return AlertProgress(alert_id=alert_id, at=at, window_s=window_s, channels=tuple(channels))


def channel_rate_limits(channels: Iterable[ChannelConfig]) -> dict[str, float]:
    """Each enabled channel's global rate limit (msgs/s), as :func:`alert_progress` takes them.

    The same limits the worker's rate limiter applies (provider defaults
    overridden by the channel's options), so an ETA before the first send
    assumes the speed the fan-out will actually be allowed.
    """
    limits: dict[str, float] = {}
    for channel in channels:
        if channel.enabled:
            rate = limits_for(channel)[0].global_per_s
            if rate is not None:
                limits[channel.name] = rate
    return limits
