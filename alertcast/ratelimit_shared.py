"""A channel's global budget shared by every instance through PostgreSQL.

Two workers on two hosts each pacing a Telegram bot at 30 messages per second
would send 60: the provider's limit belongs to the bot, not to the process.
With :class:`SharedBudget` each instance's :class:`~alertcast.ratelimit.RateLimiter`
takes its global tokens in small leases from one row of ``rate_budgets`` per
channel (scope = the channel's name), so together they never draw more than
the provider allows; each still paces its own sends locally.

A lease is one statement: the row is locked (``FOR UPDATE``, so racing
instances take turns and each sees the other's write), refilled by the time
elapsed on the *database's* clock (instances' clocks never matter), and the
granted tokens are subtracted, all in one ``UPDATE ... RETURNING``. When the
channel is paused (a 429's ``retry_after`` seen by any instance) nothing is
granted until ``paused_until``.

Per-recipient and per-group budgets stay local: a recipient's messages for
one alert are rows claimed by one worker at a time, and a database round
trip per message would cost more than it protects.

PostgreSQL only: on SQLite there is a single process and the local limiter
is exact on its own.
"""

from __future__ import annotations

import asyncio
import math

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.ratelimit import RateLimits
from alertcast.store.engine import database_errors

__all__ = ["SharedBudget"]

log = structlog.get_logger(__name__)

_ENSURE = text(
    "INSERT INTO rate_budgets (scope, tokens, refreshed_at, paused_until) "
    "VALUES (:scope, :capacity, clock_timestamp(), NULL) ON CONFLICT (scope) DO NOTHING"
)

_TAKE = text(
    """
    WITH current AS (
        SELECT scope, tokens, refreshed_at, paused_until, clock_timestamp() AS ts
        FROM rate_budgets WHERE scope = :scope FOR UPDATE
    ), refilled AS (
        SELECT scope, ts, paused_until,
               LEAST(CAST(:capacity AS double precision),
                     tokens + GREATEST(0, EXTRACT(EPOCH FROM ts - refreshed_at)) * :rate)
                   AS tokens
        FROM current
    ), granted AS (
        SELECT scope, ts, paused_until, tokens,
               CASE WHEN paused_until IS NOT NULL AND paused_until > ts THEN 0
                    ELSE LEAST(CAST(:want AS double precision), GREATEST(0, FLOOR(tokens)))
               END AS granted
        FROM refilled
    )
    UPDATE rate_budgets AS b
    SET tokens = g.tokens - g.granted, refreshed_at = g.ts
    FROM granted AS g
    WHERE b.scope = g.scope
    RETURNING g.granted, g.tokens - g.granted AS left_over,
              CAST(GREATEST(0, EXTRACT(EPOCH FROM g.paused_until - g.ts)) AS double precision)
                  AS paused_for
    """
)

_PAUSE = text(
    "UPDATE rate_budgets SET paused_until = GREATEST(COALESCE(paused_until, clock_timestamp()), "
    "clock_timestamp() + make_interval(secs => :seconds)) WHERE scope = :scope"
)


class SharedBudget:
    """Global token buckets in ``rate_budgets`` (migration 0004), one row per channel."""

    def __init__(self, engine: AsyncEngine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("a shared rate budget needs PostgreSQL; SQLite runs one process")
        self._engine = engine
        self._known: set[str] = set()
        self._pauses: set[asyncio.Task[None]] = set()

    async def take(self, channel: str, limits: RateLimits, want: float) -> tuple[float, float]:
        """Up to ``want`` tokens now, and the seconds to wait when fewer were granted."""
        rate = limits.global_per_s
        if rate is None:
            return want, 0.0
        capacity = float(max(1, limits.burst))
        with database_errors(f"taking rate budget for channel {channel!r}"):
            if channel not in self._known:
                # Committed on its own, so that no lease can look for a row not yet visible.
                async with self._engine.begin() as conn:
                    await conn.execute(_ENSURE, {"scope": channel, "capacity": capacity})
                self._known.add(channel)
            async with self._engine.begin() as conn:
                row = (
                    await conn.execute(
                        _TAKE,
                        {"scope": channel, "capacity": capacity, "rate": rate, "want": want},
                    )
                ).one()
        granted, left_over, paused_for = float(row[0]), float(row[1]), float(row[2])
        if granted >= want:
            return granted, 0.0
        if paused_for > 0:
            return granted, paused_for  # ask again when the pause ends
        # Otherwise less than one whole token was left: ask again once it has refilled.
        return granted, max((1.0 - left_over) / rate, 0.001)

    def pause(self, channel: str, seconds: float) -> None:
        """Close the channel for every instance; written in the background (pause is sync)."""
        if not math.isfinite(seconds) or seconds <= 0:
            return
        task = asyncio.get_running_loop().create_task(self._write_pause(channel, seconds))
        self._pauses.add(task)
        task.add_done_callback(self._pauses.discard)

    async def _write_pause(self, channel: str, seconds: float) -> None:
        try:
            with database_errors(f"pausing rate budget for channel {channel!r}"):
                async with self._engine.begin() as conn:
                    await conn.execute(_PAUSE, {"scope": channel, "seconds": seconds})
        except Exception as exc:  # the local pause still holds; other instances learn by 429
            log.warning("ratelimit.shared_pause_failed", channel=channel, error=str(exc))

    async def drain(self) -> None:
        """Wait for pauses still being written (call before closing the engine)."""
        if self._pauses:
            await asyncio.gather(*self._pauses, return_exceptions=True)
