"""Feed health: failing, unhealthy once per episode, recovered, stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit, feed_health
from alertcast.feed_health import HealthEvent, crossed, health_of, is_stale, stale_after
from alertcast.store.feed_state import FeedState, Validators
from tests.feeds.conftest import feed_config

NOW = datetime(2026, 1, 19, 17, 0, tzinfo=UTC)


def state(**values: object) -> FeedState:
    return FeedState(feed="avisos", **values)  # type: ignore[arg-type]


def test_stale_defaults_to_three_intervals_and_can_be_set() -> None:
    assert stale_after(feed_config("f", "https://x.example", interval_s=60)) == timedelta(minutes=3)
    custom = feed_config("f", "https://x.example", interval_s=60, stale_after_s=86400)
    assert stale_after(custom) == timedelta(days=1)


@pytest.mark.parametrize(
    ("changed_ago_s", "stale"),
    [(10, False), (180, False), (181, True), (None, True)],
)
def test_a_feed_is_stale_after_no_change_for_longer_than_its_cadence(
    changed_ago_s: float | None, stale: bool
) -> None:
    feed = feed_config("f", "https://x.example", interval_s=60)
    changed = NOW - timedelta(seconds=changed_ago_s) if changed_ago_s is not None else None
    current = state(last_attempt_at=NOW, last_success_at=NOW, last_change_at=changed)
    assert is_stale(feed, current, NOW) is stale
    assert health_of(feed, current, NOW).stale is stale


@pytest.mark.parametrize(
    ("current", "options", "status"),
    [
        (None, {}, "never polled"),
        (None, {"enabled": False}, "disabled"),
        (state(last_attempt_at=NOW, last_change_at=NOW), {}, "ok"),
        (state(last_attempt_at=NOW, last_change_at=NOW - timedelta(hours=1)), {}, "stale"),
        (state(last_attempt_at=NOW, consecutive_failures=2, last_error="x"), {}, "failing"),
        (state(last_attempt_at=NOW, consecutive_failures=3, last_error="x"), {}, "unhealthy"),
        (state(last_attempt_at=NOW, consecutive_failures=3), {"failure_threshold": 5}, "failing"),
    ],
)
def test_the_status_shown_for_a_feed(
    current: FeedState | None, options: dict[str, object], status: str
) -> None:
    feed = feed_config("avisos", "https://x.example", interval_s=60, **options)
    health = health_of(feed, current, NOW)
    assert health.status == status
    assert health.to_json()["status"] == status


def test_a_push_feed_has_no_polling_health() -> None:
    from pathlib import Path

    from alertcast.config import FeedConfig

    push = FeedConfig(name="p", kind="push", file=Path("feeds/p.toml"))
    assert health_of(push, None, NOW).status == "push"


@pytest.mark.parametrize(
    ("before", "after", "action"),
    [
        (0, 1, None),
        (2, 3, "feed.unhealthy"),
        (3, 4, None),  # once per episode
        (3, 0, "feed.recovered"),
        (2, 0, None),  # never crossed the threshold: nothing to announce
        (0, 0, None),
    ],
)
def test_warnings_are_raised_when_crossing_the_threshold(
    before: int, after: int, action: str | None
) -> None:
    feed = feed_config("f", "https://x.example", failure_threshold=3)
    assert (
        crossed(feed, state(consecutive_failures=before), state(consecutive_failures=after))
        == action
    )


async def test_one_warning_per_episode_is_audited_and_told(engine: AsyncEngine) -> None:
    feed = feed_config("avisos", "https://x.example/feed", failure_threshold=2)
    told: list[HealthEvent] = []

    async def listener(event: HealthEvent) -> None:
        told.append(event)

    async def broken(event: HealthEvent) -> None:
        raise RuntimeError("the notifier is down")

    async def fail(at: datetime) -> None:
        await feed_health.record_failure(
            engine,
            feed,
            now=at,
            error="the server answered 502 Bad Gateway",
            next_poll_at=at + timedelta(minutes=1),
            owner=None,
            lease_until=None,
            listeners=(broken, listener),
        )

    async def succeed(at: datetime) -> None:
        await feed_health.record_success(
            engine,
            feed,
            now=at,
            changed=True,
            validators=Validators('"v1"', None, "0" * 64),
            new_items=1,
            next_poll_at=at + timedelta(minutes=1),
            owner=None,
            lease_until=None,
            listeners=(broken, listener),
        )

    for minute in range(4):
        await fail(NOW + timedelta(minutes=minute))
    await succeed(NOW + timedelta(minutes=5))
    await fail(NOW + timedelta(minutes=6))
    await fail(NOW + timedelta(minutes=7))

    records = [r for r in await audit.tail(engine, 100) if r.action.startswith("feed.")]
    assert [(r.action, r.data.get("failures")) for r in records] == [
        ("feed.unhealthy", 2),
        ("feed.recovered", 4),
        ("feed.unhealthy", 2),
    ]
    assert all(r.subject == "feed:avisos" and r.actor == "alertcast:poller" for r in records)
    assert records[0].data["reason"] == "the server answered 502 Bad Gateway"
    assert [e.action for e in told] == ["feed.unhealthy", "feed.recovered", "feed.unhealthy"]
    assert await audit.verify_chain(engine) == 3


async def test_a_lost_lease_records_nothing(engine: AsyncEngine) -> None:
    from alertcast.store.feed_state import FeedStateRepository

    feed = feed_config("avisos", "https://x.example/feed")
    repository = FeedStateRepository(engine)
    assert await repository.acquire_lease(
        "avisos", owner="a", now=NOW, until=NOW + timedelta(minutes=5)
    )
    recorded = await feed_health.record_failure(
        engine,
        feed,
        now=NOW,
        error="x",
        next_poll_at=NOW,
        owner="b",
        lease_until=NOW + timedelta(minutes=5),
    )
    assert recorded is None
    current = await repository.get("avisos")
    assert current is not None and current.consecutive_failures == 0


async def test_quiet_polls_of_many_feeds_are_written_together(engine: AsyncEngine) -> None:
    import asyncio

    from alertcast.store.feed_state import FeedStateRepository, QuietSuccessWriter

    repository = FeedStateRepository(engine)
    later = NOW + timedelta(minutes=5)
    for name in ("a", "b", "lost", "failing"):
        owner = "other" if name == "lost" else "me"
        assert await repository.acquire_lease(name, owner=owner, now=NOW, until=later)
    await feed_health.record_failure(
        engine,
        feed_config("failing", "https://x.example"),
        now=NOW,
        error="x",
        next_poll_at=NOW,
        owner="me",
        lease_until=later,
    )
    writer = QuietSuccessWriter(engine, linger_s=0.05)
    results = await asyncio.gather(
        *(
            writer.record(
                name,
                now=NOW + timedelta(seconds=1),
                validators=Validators('"e"', None, "f" * 64) if name == "b" else None,
                next_poll_at=NOW + timedelta(minutes=1),
                owner="me",
                lease_until=later + timedelta(minutes=1),
            )
            for name in ("a", "b", "lost", "failing")
        )
    )
    a, b, lost, failing = results
    assert a is not None and a.last_success_at == NOW + timedelta(seconds=1)
    assert a.lease_until == later + timedelta(minutes=1) and a.etag is None
    assert b is not None and b.etag == '"e"'
    assert lost is None  # another instance holds it: the caller's ordinary path says so
    assert failing is None  # a failure was counted: the ordinary path records the recovery
    untouched = await repository.get("lost")
    assert untouched is not None and untouched.last_success_at is None
    await writer.aclose()
