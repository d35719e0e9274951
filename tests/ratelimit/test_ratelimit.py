"""The rate limiter's promises, on virtual time: exact, saturated, per key, pausable."""

from __future__ import annotations

import ast
import asyncio
import itertools
from bisect import bisect_left
from pathlib import Path
from typing import Any

import pytest

from alertcast.config import ChannelConfig
from alertcast.ratelimit import PROVIDER_DEFAULTS, RateLimiter, RateLimits, limits_for
from tests.ratelimit.virtual_clock import VirtualClock

# Float slack for window boundaries computed from sums of 1/30 s.
SLACK = 1e-6


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of sends inside any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    return max(
        (bisect_left(ordered, start + window - SLACK) - i for i, start in enumerate(ordered)),
        default=0,
    )


async def send_all(
    limiter: RateLimiter,
    clock: VirtualClock,
    channel: str,
    messages: list[dict[str, Any]],
    *,
    workers: int = 100,
) -> list[tuple[float, dict[str, Any]]]:
    """Send ``messages`` through ``workers`` concurrent senders; return (time, message)."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message in messages:
        queue.put_nowait(message)
    sent: list[tuple[float, dict[str, Any]]] = []

    async def worker() -> None:
        while not queue.empty():
            message = queue.get_nowait()
            await limiter.acquire(channel, **message)
            sent.append((clock.monotonic(), message))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return sent


def channel_config(kind: str, **options: Any) -> ChannelConfig:
    return ChannelConfig(name="c", kind=kind, file=Path("channels/c.toml"), options=options)


async def test_global_rate_is_exact_over_a_long_window_and_never_exceeded() -> None:
    clock = VirtualClock()
    limiter = RateLimiter({"tg": RateLimits(global_per_s=30.0)}, clock=clock)
    sent = await clock.run(send_all(limiter, clock, "tg", [{}] * 3000))
    times = [t for t, _ in sent]
    span = max(times) - min(times)
    assert len(times) == 3000
    # The achieved rate equals the configured one within one token.
    assert abs(len(times) - 30.0 * span) <= 1.0 + SLACK
    assert most_in_any_window(times, 1.0) <= 30
    assert most_in_any_window(times, 10.0) <= 300


async def test_burst_allows_only_burst_minus_one_extra_in_any_window() -> None:
    clock = VirtualClock()
    limiter = RateLimiter({"m": RateLimits(global_per_s=10.0, burst=5)}, clock=clock)
    sent = await clock.run(send_all(limiter, clock, "m", [{}] * 200))
    times = [t for t, _ in sent]
    assert most_in_any_window(times, 1.0) <= 10 + 4
    assert times.count(min(times)) == 5  # the burst leaves at once


async def test_per_recipient_rate_holds_while_global_rate_is_saturated() -> None:
    clock = VirtualClock()
    limits = RateLimits(global_per_s=30.0, per_recipient_per_s=1.0)
    limiter = RateLimiter({"tg": limits}, clock=clock)
    # Each chat's messages are queued back to back, and all wait at once.
    messages = [{"recipient": f"chat{c}"} for c in range(100) for _ in range(20)]
    sent = await clock.run(send_all(limiter, clock, "tg", messages, workers=len(messages)))
    times = [t for t, _ in sent]
    assert len(times) == 2000
    assert most_in_any_window(times, 1.0) <= 30
    by_chat: dict[str, list[float]] = {}
    for t, message in sent:
        by_chat.setdefault(message["recipient"], []).append(t)
    for chat_times in by_chat.values():
        assert len(chat_times) == 20
        assert most_in_any_window(chat_times, 1.0) <= 1
    # Waiters held back by their chat never hold the global budget.
    achieved = len(times) / (max(times) - min(times) + 1 / 30)
    assert achieved >= 0.95 * 30


async def test_per_group_rate_is_twenty_a_minute_without_slowing_other_chats() -> None:
    clock = VirtualClock()
    limits = RateLimits(global_per_s=30.0, per_recipient_per_s=1.0, per_group_per_minute=20.0)
    limiter = RateLimiter({"tg": limits}, clock=clock)
    group_messages = [{"recipient": "-100", "group": "-100"}] * 60
    private_messages = [{"recipient": f"user{u}"} for u in range(900)]
    sent = await clock.run(
        send_all(limiter, clock, "tg", group_messages + private_messages, workers=200)
    )
    group_times = [t for t, m in sent if m.get("group") == "-100"]
    private_times = [t for t, m in sent if m.get("group") is None]
    assert len(group_times) == 60
    assert most_in_any_window(group_times, 60.0) <= 20
    assert most_in_any_window([t for t, _ in sent], 1.0) <= 30
    # The 900 private messages leave at the full rate, not behind the group's queue.
    assert max(private_times) - min(private_times) <= 900 / 30 + 1


async def test_pause_delays_everyone_on_that_channel_and_only_that_channel() -> None:
    clock = VirtualClock()
    limits = RateLimits(global_per_s=10.0, per_recipient_per_s=1.0)
    limiter = RateLimiter({"a": limits, "b": limits}, clock=clock)
    start = clock.monotonic()
    paused_at = start + 2.0

    async def scenario() -> tuple[list[tuple[float, dict[str, Any]]], ...]:
        async def pause_later() -> None:
            await clock.advance(2.0)
            limiter.pause("a", 5.0)

        messages = [{"recipient": f"r{i}"} for i in range(100)]
        results = await asyncio.gather(
            send_all(limiter, clock, "a", messages),
            send_all(limiter, clock, "b", messages),
            pause_later(),
        )
        return results[0], results[1]

    sent_a, sent_b = await clock.run(scenario())
    times_a = [t for t, _ in sent_a]
    times_b = [t for t, _ in sent_b]
    assert not [t for t in times_a if paused_at < t < paused_at + 5.0 - SLACK]
    assert [t for t in times_a if t >= paused_at + 5.0]
    # Channel b kept its full rate through a's pause.
    assert len([t for t in times_b if paused_at < t < paused_at + 5.0]) >= 49
    assert max(times_b) - start <= 10.0 + SLACK


async def test_a_longer_pause_is_never_cut_short_by_a_shorter_one() -> None:
    clock = VirtualClock()
    limiter = RateLimiter({"a": RateLimits(global_per_s=1.0)}, clock=clock)
    limiter.pause("a", 30.0)
    limiter.pause("a", 2.0)
    assert limiter.paused_for("a") == pytest.approx(30.0)
    start = clock.monotonic()
    await clock.run(limiter.acquire("a"))
    assert clock.monotonic() - start == pytest.approx(30.0)


async def test_idle_recipient_buckets_are_evicted() -> None:
    clock = VirtualClock()
    limits = RateLimits(global_per_s=30.0, per_recipient_per_s=1.0)
    limiter = RateLimiter({"tg": limits}, clock=clock)
    messages = [{"recipient": f"chat{c}"} for c in range(10_000)]
    await clock.run(send_all(limiter, clock, "tg", messages))
    # Only chats written to within the last second (plus one sweep period) are kept.
    assert limiter.tracked_keys("tg") <= 256 + 30 + 100


async def test_cost_counts_sms_segments() -> None:
    clock = VirtualClock()
    limiter = RateLimiter({"sms": RateLimits(global_per_s=3.0)}, clock=clock)
    sent = await clock.run(send_all(limiter, clock, "sms", [{"cost": 3}] * 10))
    times = sorted(t for t, _ in sent)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([1.0] * 9)


async def test_a_cancelled_waiter_takes_nothing() -> None:
    clock = VirtualClock()
    limiter = RateLimiter({"a": RateLimits(global_per_s=1.0, per_recipient_per_s=0.5)}, clock=clock)

    async def scenario() -> float:
        await limiter.acquire("a", recipient="x")
        waiter = asyncio.ensure_future(limiter.acquire("a", recipient="x"))
        await clock.advance(0.5)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        before = clock.monotonic()
        await limiter.acquire("a", recipient="y")  # the global token is still there
        return clock.monotonic() - before

    assert await clock.run(scenario()) == pytest.approx(0.5)


async def test_unknown_channel_is_refused() -> None:
    limiter = RateLimiter({})
    with pytest.raises(ValueError, match="no rate limits configured"):
        await limiter.acquire("nowhere")


def test_unlimited_channel_never_waits() -> None:
    limits, problems = limits_for(channel_config("console"))
    assert limits.global_per_s is None
    assert problems == []


def test_telegram_defaults_are_the_documented_ones() -> None:
    limits, problems = limits_for(channel_config("telegram"))
    assert problems == []
    assert limits == RateLimits(30.0, 1.0, 20.0, 1)
    assert "core.telegram.org" in PROVIDER_DEFAULTS["telegram"].source


@pytest.mark.parametrize(
    ("number_type", "rate"), [("long_code", 1.0), ("toll_free", 3.0), ("short_code", 100.0)]
)
def test_sms_defaults_follow_the_number_type(number_type: str, rate: float) -> None:
    limits, problems = limits_for(channel_config("sms", number_type=number_type))
    assert problems == []
    assert limits.global_per_s == rate


def test_windowed_defaults_never_exceed_the_window() -> None:
    mastodon = PROVIDER_DEFAULTS["mastodon"].limits
    assert mastodon.global_per_s is not None
    assert mastodon.burst + mastodon.global_per_s * 300 <= 300 + SLACK


def test_options_override_the_defaults() -> None:
    options = {"rate_per_s": 10, "per_recipient_per_s": 0.5, "per_group_per_minute": 6, "burst": 3}
    limits, problems = limits_for(channel_config("telegram", **options))
    assert problems == []
    assert limits == RateLimits(10.0, 0.5, 6.0, 3)


def test_invalid_options_are_reported_and_defaults_kept() -> None:
    options = {"rate_per_s": "fast", "per_recipient_per_s": 0, "burst": 1.5}
    limits, problems = limits_for(channel_config("telegram", **options))
    assert limits == PROVIDER_DEFAULTS["telegram"].limits
    assert {(p.file, p.key) for p in problems} == {
        ("channels/c.toml", "options.rate_per_s"),
        ("channels/c.toml", "options.per_recipient_per_s"),
        ("channels/c.toml", "options.burst"),
    }


@pytest.mark.parametrize("value", [True, -1, float("inf"), float("nan")])
def test_rate_must_be_a_positive_finite_number(value: object) -> None:
    _, problems = limits_for(channel_config("webhook", rate_per_s=value))
    assert [p.key for p in problems] == ["options.rate_per_s"]


def test_unknown_sms_number_type_falls_back_to_the_slowest() -> None:
    limits, problems = limits_for(channel_config("sms", number_type="alphanumeric"))
    assert limits.global_per_s == 1.0
    assert [p.key for p in problems] == ["options.number_type"]


def test_unknown_kind_is_limited_not_unlimited() -> None:
    limits, problems = limits_for(channel_config("pigeon"))
    assert limits.global_per_s == 1.0
    assert [p.key for p in problems] == ["kind"]


def test_from_channels_skips_disabled_and_collects_problems() -> None:
    enabled = channel_config("telegram", burst=0)
    disabled = ChannelConfig(name="off", kind="sms", file=Path("channels/off.toml"), enabled=False)
    limiter, problems = RateLimiter.from_channels([enabled, disabled])
    assert limiter.limits("c").global_per_s == 30.0
    assert [p.key for p in problems] == ["options.burst"]
    with pytest.raises(ValueError):
        limiter.limits("off")


def test_the_limiter_imports_no_sdk_and_no_database() -> None:
    source = Path(__file__).resolve().parents[2] / "alertcast" / "ratelimit.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"aiohttp", "feedparser", "telegram", "twilio", "sqlalchemy", "httpx"}
