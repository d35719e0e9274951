"""Keep every provider saturated without ever exceeding its limits.

A provider sets the physical limit of a fan-out: a Telegram bot gets about 30
messages per second overall, one per second in one chat and 20 per minute in
one group; a Twilio long code one segment per second. Going over earns 429s
(and, repeated, a ban); staying far under delays a tsunami warning. So every
send on a channel first calls :meth:`RateLimiter.acquire`, which returns at the
earliest moment the send is allowed under every budget that applies: the
channel's global one, the recipient's and the group's.

How it stays both exact and saturated:

* Each budget is a token bucket (``rate`` tokens per second, at most
  ``capacity`` stored). With a capacity of 1 the sends are evenly spaced and
  no window of ``W`` seconds ever holds more than ``rate * W`` of them; a
  larger ``burst`` allows ``burst - 1`` more in any window.
* A waiter first waits for its recipient's and group's buckets, holding a
  per-key lock so that only one waiter per key is ever between "the key
  allows it" and "the send is taken"; only then does it queue, FIFO, for the
  global bucket. A waiter held back by its chat therefore never holds a
  global token: the global budget goes to whoever can use it, and many
  concurrent waiters together reach the full rate.
* Tokens are taken from every bucket at the same instant, when the global
  bucket grants the send; a key bucket can only have gained tokens since it
  was checked, so no budget is overdrawn.
* A provider's 429 with ``retry_after`` calls :meth:`RateLimiter.pause`: that
  channel's global gate stays closed until then, for every waiter on that
  channel and no other.
* Per-recipient buckets would otherwise grow with every chat ever written
  to; a bucket that is full again and has no waiter is exactly a fresh one,
  so it is dropped (swept every few hundred acquisitions).

The clock is injected (:class:`Clock`) so tests run on virtual time.

Each acquisition's wait (zero included, on the limiter's clock) is observed
in ``alertcast_rate_limiter_wait_seconds`` (:mod:`alertcast.metrics`): a
channel whose sends mostly wait is one held back by its provider's limits.

Several instances sending for the same bot share its global budget through
PostgreSQL: pass ``shared=`` a :class:`GlobalBudget`
(:class:`alertcast.ratelimit_shared.SharedBudget`), and the global tokens are
taken from the database in small leases, still paced locally.

The defaults come from the providers' documented limits
(:data:`PROVIDER_DEFAULTS`, each with its source); a channel's ``[options]``
override them: ``rate_per_s``, ``per_recipient_per_s``,
``per_group_per_minute``, ``burst``, and for SMS ``number_type``
(``long_code``, ``toll_free``, ``short_code``). For SMS one token is one
segment: pass ``cost=segments``.

Windowed limits (Mastodon's 300 calls per 5 minutes) are turned into a rate
and a burst such that ``burst + rate * window`` never exceeds the window's
allowance, whatever the alignment of the provider's window.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from alertcast.config import ChannelConfig
from alertcast.errors import ConfigProblem
from alertcast.metrics import Metrics
from alertcast.metrics import metrics as process_metrics

__all__ = [
    "PROVIDER_DEFAULTS",
    "Clock",
    "GlobalBudget",
    "ProviderDefault",
    "RateLimiter",
    "RateLimits",
    "SystemClock",
    "limits_for",
]

log = structlog.get_logger(__name__)

# Sweep idle per-key buckets after this many acquisitions on a channel.
_SWEEP_EVERY = 256
# Float slack when comparing token counts, so 0.9999999 tokens count as 1.
_EPSILON = 1e-9
# The SMS sender type assumed when a channel does not say (the slowest).
_DEFAULT_NUMBER_TYPE = "long_code"
_NUMBER_TYPES = ("long_code", "toll_free", "short_code")


class Clock(Protocol):
    """Monotonic time and a way to wait for it; tests pass a virtual clock."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class GlobalBudget(Protocol):
    """A channel's global budget shared with other instances (see ``alertcast.ratelimit_shared``).

    ``take`` grants up to ``want`` tokens now and, when it grants fewer than
    asked, says how many seconds to wait before asking again; ``pause`` closes
    the channel for every instance.
    """

    async def take(self, channel: str, limits: RateLimits, want: float) -> tuple[float, float]: ...

    def pause(self, channel: str, seconds: float) -> None: ...


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`asyncio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The budgets of one channel. ``None`` means that budget does not apply.

    ``burst`` is the capacity of the global bucket: how many sends may leave
    back to back after a quiet spell. Per-recipient and per-group buckets hold
    one token, the strictest reading of the providers' "per chat" limits.
    """

    global_per_s: float | None
    per_recipient_per_s: float | None = None
    per_group_per_minute: float | None = None
    burst: int = 1


@dataclass(frozen=True, slots=True)
class ProviderDefault:
    """A provider's documented limit, where it is documented, and what was assumed."""

    limits: RateLimits
    source: str
    note: str = ""


def _windowed(allowance: int, window_s: float, burst: int) -> RateLimits:
    """``allowance`` per ``window_s`` as a bucket that never exceeds it in any window."""
    return RateLimits(global_per_s=(allowance - burst) / window_s, burst=burst)


_TELEGRAM_FAQ = "https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this"
_TWILIO_QUEUES = (
    "https://support.twilio.com/hc/en-us/articles/115002943027-Understanding-Twilio-Rate-"
    "Limits-and-Message-Queues; https://www.twilio.com/docs/api/errors/30001"
)

PROVIDER_DEFAULTS: Mapping[str, ProviderDefault] = {
    "telegram": ProviderDefault(
        RateLimits(global_per_s=30.0, per_recipient_per_s=1.0, per_group_per_minute=20.0),
        _TELEGRAM_FAQ,
        "30 messages/s overall, 1/s per chat, 20/min per group",
    ),
    "sms:long_code": ProviderDefault(
        RateLimits(global_per_s=1.0),
        _TWILIO_QUEUES,
        "US long code: 1 segment/s; one token per segment",
    ),
    "sms:toll_free": ProviderDefault(
        RateLimits(global_per_s=3.0),
        _TWILIO_QUEUES + "; https://docs.aws.amazon.com/sms-voice/latest/userguide/"
        "sms-limitations-mps.html",
        "US toll-free: 3 segments/s",
    ),
    "sms:short_code": ProviderDefault(
        RateLimits(global_per_s=100.0),
        _TWILIO_QUEUES,
        "US short code: 100 segments/s (more by contract: set rate_per_s)",
    ),
    "whatsapp": ProviderDefault(
        RateLimits(global_per_s=80.0, per_recipient_per_s=1 / 6),
        "https://developers.facebook.com/documentation/business-messaging/whatsapp/throughput",
        "Cloud API: 80 msg/s per business number by default. Twilio documents its own "
        "sender default of 10 text msg/s (50 on request, "
        "https://www.twilio.com/docs/whatsapp/best-practices-and-faqs): set rate_per_s = 10 "
        "for a Twilio sender not yet raised. Per-recipient pair rate of about one message "
        "every 6 s is assumed from Meta's 'pair rate limit' (error 131056)",
    ),
    "mastodon": ProviderDefault(
        _windowed(300, 300.0, burst=10),
        "https://docs.joinmastodon.org/api/rate-limits/",
        "300 calls per 5 minutes per account; instances may differ",
    ),
    "x": ProviderDefault(
        _windowed(300, 3 * 3600.0, burst=10),
        "https://docs.x.com/x-api/posts/manage-tweets/migrate/overview",
        "POST /2/tweets: 200 per 15 min per user and 300 per 3 hours per user and app; "
        "the 3-hour one binds. Lower paid tiers have daily caps: set rate_per_s",
    ),
    "bluesky": ProviderDefault(
        _windowed(11_666, 86_400.0, burst=100),
        "https://docs.bsky.app/docs/advanced-guides/rate-limits",
        "5,000 points/hour and 35,000/day per account, a created record costing 3: "
        "1,666 posts/hour and 11,666/day; the daily one binds",
    ),
    "facebook": ProviderDefault(
        _windowed(4_800, 86_400.0, burst=10),
        "https://developers.facebook.com/docs/graph-api/overview/rate-limiting/",
        "Page access tokens: 4,800 calls x engaged users per 24 h; one engaged user "
        "assumed (the floor): raise rate_per_s for a larger page",
    ),
    "email": ProviderDefault(
        RateLimits(global_per_s=10.0, burst=10),
        "assumed",
        "no common documented limit (it depends on the relay: set rate_per_s)",
    ),
    "webhook": ProviderDefault(
        RateLimits(global_per_s=50.0, per_recipient_per_s=10.0, burst=10),
        "assumed",
        "the receiver is ours to agree with: 50/s overall, 10/s per endpoint assumed",
    ),
    "cap": ProviderDefault(RateLimits(global_per_s=None), "local", "written locally"),
    "console": ProviderDefault(RateLimits(global_per_s=None), "local", "written locally"),
    "file": ProviderDefault(RateLimits(global_per_s=None), "local", "written locally"),
}

# The safe default for a kind with no entry above (the config check reports the kind itself).
_UNKNOWN_KIND = RateLimits(global_per_s=1.0)


def _default_key(kind: str, options: Mapping[str, Any]) -> str:
    if kind != "sms":
        return kind
    number_type = options.get("number_type", _DEFAULT_NUMBER_TYPE)
    if number_type not in _NUMBER_TYPES:
        number_type = _DEFAULT_NUMBER_TYPE
    return f"sms:{number_type}"


def _positive_number(
    options: Mapping[str, Any], key: str, file: str, problems: list[ConfigProblem]
) -> float | None:
    """The option as a positive finite float, or None (absent or reported)."""
    if key not in options:
        return None
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(ConfigProblem(file, f"options.{key}", f"must be a number, not {value!r}"))
        return None
    if not math.isfinite(value) or value <= 0:
        problems.append(ConfigProblem(file, f"options.{key}", f"must be above 0, not {value!r}"))
        return None
    return float(value)


def limits_for(channel_config: ChannelConfig) -> tuple[RateLimits, list[ConfigProblem]]:
    """The channel's limits: its kind's documented defaults, overridden by its options.

    Every wrong option is reported (file, key, message) and its default kept,
    so one typo never leaves a channel unlimited.
    """
    file = str(channel_config.file)
    options = channel_config.options
    problems: list[ConfigProblem] = []
    number_type = options.get("number_type", _DEFAULT_NUMBER_TYPE)
    if channel_config.kind == "sms" and number_type not in _NUMBER_TYPES:
        known = ", ".join(_NUMBER_TYPES)
        problems.append(
            ConfigProblem(
                file,
                "options.number_type",
                f"must be one of {known}, not {number_type!r}; "
                f"{_DEFAULT_NUMBER_TYPE} (the slowest) assumed",
            )
        )
    default = PROVIDER_DEFAULTS.get(_default_key(channel_config.kind, options))
    if default is None:
        base = _UNKNOWN_KIND
        problems.append(
            ConfigProblem(
                file,
                "kind",
                f"no rate limits known for kind {channel_config.kind!r}; 1 per second assumed",
            )
        )
    else:
        base = default.limits
    rate = _positive_number(options, "rate_per_s", file, problems)
    per_recipient = _positive_number(options, "per_recipient_per_s", file, problems)
    per_group = _positive_number(options, "per_group_per_minute", file, problems)
    burst = base.burst
    if "burst" in options:
        value = options["burst"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(
                ConfigProblem(file, "options.burst", f"must be a whole number ≥ 1, not {value!r}")
            )
        else:
            burst = value
    limits = RateLimits(
        global_per_s=rate if rate is not None else base.global_per_s,
        per_recipient_per_s=per_recipient
        if per_recipient is not None
        else base.per_recipient_per_s,
        per_group_per_minute=per_group if per_group is not None else base.per_group_per_minute,
        burst=burst,
    )
    return limits, problems


class _Bucket:
    """A token bucket; tokens may go negative when one send costs more than it holds."""

    __slots__ = ("capacity", "lock", "rate", "stamp", "tokens", "users")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now
        self.lock = asyncio.Lock()
        self.users = 0

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def delay(self, now: float, cost: float) -> float:
        """Seconds until ``cost`` may be taken (a cost above capacity needs a full bucket)."""
        self.refill(now)
        needed = min(cost, self.capacity)
        if self.tokens >= needed - _EPSILON:
            return 0.0
        return (needed - self.tokens) / self.rate

    def take(self, now: float, cost: float) -> None:
        self.refill(now)
        self.tokens -= cost

    def idle(self, now: float) -> bool:
        """Full and unused: indistinguishable from a fresh bucket, so it can be dropped."""
        self.refill(now)
        return self.users == 0 and self.tokens >= self.capacity - _EPSILON


class _ChannelState:
    __slots__ = (
        "acquisitions",
        "gate",
        "global_bucket",
        "groups",
        "leased",
        "limits",
        "paused_until",
        "recipients",
    )

    def __init__(self, limits: RateLimits, now: float) -> None:
        self.limits = limits
        self.global_bucket = (
            _Bucket(limits.global_per_s, float(max(1, limits.burst)), now)
            if limits.global_per_s
            else None
        )
        self.gate = asyncio.Lock()
        self.paused_until = -math.inf
        self.recipients: dict[str, _Bucket] = {}
        self.groups: dict[str, _Bucket] = {}
        self.acquisitions = 0
        self.leased = 0.0


class RateLimiter:
    """Per-channel budgets: global, per recipient and per group, with provider pauses.

    ``limits`` maps a channel name to its :class:`RateLimits`. Acquiring on a
    channel that has none is a programming error (ValueError): an unknown
    channel must never be sent to unlimited.
    """

    def __init__(
        self,
        limits: Mapping[str, RateLimits],
        *,
        clock: Clock | None = None,
        shared: GlobalBudget | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._shared = shared
        self._metrics = metrics if metrics is not None else process_metrics()
        now = self._clock.monotonic()
        self._channels = {name: _ChannelState(lim, now) for name, lim in limits.items()}

    @classmethod
    def from_channels(
        cls,
        channels: Iterable[ChannelConfig],
        *,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
    ) -> tuple[RateLimiter, list[ConfigProblem]]:
        """A limiter for the enabled configured channels, with every option problem found."""
        limits: dict[str, RateLimits] = {}
        problems: list[ConfigProblem] = []
        for channel in channels:
            if not channel.enabled:
                continue
            limits[channel.name], found = limits_for(channel)
            problems.extend(found)
        return cls(limits, clock=clock, metrics=metrics), problems

    def limits(self, channel: str) -> RateLimits:
        return self._state(channel).limits

    def tracked_keys(self, channel: str) -> int:
        """How many per-recipient and per-group buckets are held (bounded by eviction)."""
        state = self._state(channel)
        return len(state.recipients) + len(state.groups)

    def paused_for(self, channel: str) -> float:
        """Seconds left of the channel's pause (0 when it is not paused)."""
        return max(0.0, self._state(channel).paused_until - self._clock.monotonic())

    def pause(self, channel: str, seconds: float) -> None:
        """Close the channel's budget for ``seconds`` (a provider's ``retry_after``).

        Pauses only ever lengthen: a shorter retry_after arriving later does not
        cut short a longer one still running.
        """
        state = self._state(channel)
        until = self._clock.monotonic() + max(0.0, seconds)
        if until > state.paused_until:
            state.paused_until = until
            log.warning("ratelimit.paused", channel=channel, seconds=round(seconds, 3))
        if self._shared is not None:
            self._shared.pause(channel, seconds)

    async def acquire(
        self,
        channel: str,
        *,
        recipient: str | None = None,
        group: str | None = None,
        cost: float = 1.0,
    ) -> None:
        """Wait until one send (``cost`` tokens, e.g. SMS segments) is allowed, and take it."""
        state = self._state(channel)
        clock = self._clock
        keyed: list[_Bucket] = []
        now = began = clock.monotonic()
        if group is not None and state.limits.per_group_per_minute:
            keyed.append(
                _key_bucket(state.groups, group, state.limits.per_group_per_minute / 60, now)
            )
        if recipient is not None and state.limits.per_recipient_per_s:
            keyed.append(
                _key_bucket(state.recipients, recipient, state.limits.per_recipient_per_s, now)
            )
        for bucket in keyed:
            bucket.users += 1
        try:
            async with AsyncExitStack() as held:
                for bucket in keyed:  # always group before recipient: no lock-order deadlock
                    await held.enter_async_context(bucket.lock)
                while (
                    wait := max((b.delay(clock.monotonic(), cost) for b in keyed), default=0)
                ) > 0:
                    await clock.sleep(wait)
                async with state.gate:
                    await self._pass_gate(channel, state, cost)
                    now = clock.monotonic()
                    if state.global_bucket is not None:
                        state.global_bucket.take(now, cost)
                    for bucket in keyed:
                        bucket.take(now, cost)
        finally:
            for bucket in keyed:
                bucket.users -= 1
        self._metrics.rate_wait(channel, now - began)
        state.acquisitions += 1
        if state.acquisitions % _SWEEP_EVERY == 0:
            _sweep(state, now)

    async def _pass_gate(self, channel: str, state: _ChannelState, cost: float) -> None:
        """Wait for the local pause and bucket, then for a lease of shared tokens if any."""
        clock = self._clock
        while True:
            if (wait := self._gate_delay(state, cost)) > 0:
                await clock.sleep(wait)
                continue
            if self._shared is None or state.limits.global_per_s is None:
                return
            if state.leased >= cost - _EPSILON:
                state.leased -= cost
                return
            lease = max(cost - state.leased, _lease_size(state.limits))
            granted, retry_in = await self._shared.take(channel, state.limits, lease)
            state.leased += granted
            if state.leased < cost - _EPSILON:
                await clock.sleep(max(retry_in, 0.001))
            # Loop: a pause may have arrived while the database answered.

    def _gate_delay(self, state: _ChannelState, cost: float) -> float:
        now = self._clock.monotonic()
        paused = state.paused_until - now
        bucket = state.global_bucket
        return max(paused, bucket.delay(now, cost) if bucket is not None else 0.0)

    def _state(self, channel: str) -> _ChannelState:
        try:
            return self._channels[channel]
        except KeyError:
            raise ValueError(f"no rate limits configured for channel {channel!r}") from None


def _lease_size(limits: RateLimits) -> float:
    """Tokens taken from a shared budget at once: a tenth of a second's worth, within the burst.

    Several sends per database round trip, while an instance never holds more
    than one lease unspent: together, instances exceed the shared budget by at
    most one lease each in any window.
    """
    rate = limits.global_per_s or 0.0
    return float(max(1, min(limits.burst, math.floor(rate / 10))))


def _key_bucket(buckets: dict[str, _Bucket], key: str, rate: float, now: float) -> _Bucket:
    bucket = buckets.get(key)
    if bucket is None:
        bucket = buckets[key] = _Bucket(rate, 1.0, now)
    return bucket


def _sweep(state: _ChannelState, now: float) -> None:
    for buckets in (state.recipients, state.groups):
        for key in [k for k, b in buckets.items() if b.idle(now)]:
            del buckets[key]
