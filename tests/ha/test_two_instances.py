"""Two ``alertcast serve`` processes on one PostgreSQL; one is killed with SIGKILL mid fan-out.

What an agency running two instances must be able to count on when a host
dies in the middle of a warning:

* every recipient gets the message; none is lost with the dead instance;
* no more messages go out twice than the rows the dead instance held in
  flight (claimed, outcome not recorded), counted from the ledger at the kill;
* the feed is fetched by one instance per interval, and by the survivor once
  the dead one's lease has run out;
* the citizens' bot consumes updates (``getUpdates``) on one instance at a
  time, and on the survivor within the bot lease's time to live;
* the audit trail still verifies.

Instance ``a`` starts alone and takes the feed's lease and the bot's; ``b``
starts next and stands by for both, while its worker shares the fan-out. The
victim is ``a``: it holds claims like ``b`` and also both leases, so one kill
shows every fail-over. Just before the kill ``a`` is frozen (SIGSTOP), so the
rows it holds are counted with nothing more changing, then killed (SIGKILL:
no drain, no lease given back).
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alertcast.feeds.lease import MIN_GRACE_S
from alertcast.ha.leases import DEFAULT_TTL_S
from tests.ha.cluster import (
    BOT_LEASE,
    FEED_INTERVAL_S,
    Cluster,
    Hit,
    Instance,
    cap_alert,
    eventually,
    running_cluster,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not Path("/proc/net/tcp").is_file(),
        reason="telling which process made a request needs Linux's /proc/net/tcp",
    ),
]

RECIPIENTS = 2000
RATE_PER_S = 250.0
"""SMS segments per second, shared by both instances: a fan-out of several seconds."""

BOT_LEASE_TTL_S = DEFAULT_TTL_S
"""The bot lease's time to live (``serve`` uses the default)."""
WORKER_LEASE_S = 60.0
"""How long a worker's claim on a row lasts without renewal (``Worker``'s default)."""
FEED_GRACE_S = MIN_GRACE_S
"""How long a feed lease outlives its holder's next planned poll (timeout 5 s: the minimum)."""
EARLY_S = 1.0
"""A poll may come this much before the planned time (the poller's tolerance on takeover)."""
MARGIN_S = 10.0
"""Room for process scheduling on a loaded machine; never part of what is shown."""


async def _under_way(cluster: Cluster, victim: Instance) -> bool:
    """The fan-out has started and the victim holds rows in flight."""
    if len(cluster.twilio.messages) < RECIPIENTS // 10:
        return False
    return (await cluster.claims_by_pid()).get(victim.pid, 0) > 0


def _split(hits: list[Hit], at: float) -> tuple[list[Hit], list[Hit]]:
    return [h for h in hits if h.at < at], [h for h in hits if h.at >= at]


async def test_sigkill_during_fan_out_loses_nothing_and_moves_every_lease(
    pg_database_url: str, tmp_path: Path
) -> None:
    async with running_cluster(
        tmp_path, pg_database_url, recipients=RECIPIENTS, rate_per_s=RATE_PER_S
    ) as cluster:
        assert cluster.telegram is not None
        telegram = cluster.telegram
        a = await cluster.start_instance("a")

        async def a_holds_everything() -> bool:
            return (
                await cluster.feed_lease_pid() == a.pid
                and await cluster.role_lease_pid(BOT_LEASE) == a.pid
                and any(hit.pid == a.pid for hit in telegram.polls())
            )

        await eventually(
            a_holds_everything,
            timeout_s=BOT_LEASE_TTL_S,
            what=f"instance a (alone) holding the feed lease and {BOT_LEASE}, consuming updates",
            logs=[a],
        )
        b = await cluster.start_instance("b")
        standby = await cluster.readiness(b)

        cluster.feed.publish(cap_alert("pc-2026-12-06-001", datetime.now(UTC)))
        await eventually(
            lambda: _under_way(cluster, a),
            timeout_s=30,
            what="the fan-out under way with rows claimed by instance a",
            logs=[a, b],
        )

        a.freeze()
        in_flight = (await cluster.claims_by_pid()).get(a.pid, 0)
        sent_at_kill = len(cluster.twilio.messages)
        kill_at = time.monotonic()
        await a.kill()

        async def finished() -> bool:
            return await cluster.delivery_rows() == RECIPIENTS and await cluster.open_rows() == 0

        await eventually(
            finished,
            timeout_s=WORKER_LEASE_S + 2 * MARGIN_S,
            what="every delivery finished by the survivor",
            logs=[b],
            every_s=0.5,
        )

        async def feed_moved() -> bool:
            return any(h.pid == b.pid and h.at > kill_at for h in cluster.feed.fetches())

        await eventually(
            feed_moved,
            timeout_s=FEED_GRACE_S + 2 * FEED_INTERVAL_S + MARGIN_S,
            what="the survivor polling the feed after the kill",
            logs=[b],
            every_s=0.5,
        )
        states = await cluster.delivery_states()
        alerts_taken = await cluster.alerts_from_feed()
        bot_holder = await cluster.role_lease_pid(BOT_LEASE)
        survivor = await cluster.readiness(b)
        code, output = await cluster.cli("audit", "verify")

    # The kill came in the middle of the fan-out, with rows in the victim's hands.
    assert 0 < sent_at_kill < RECIPIENTS
    assert in_flight > 0

    # Every recipient got the message; nobody else got anything.
    received = cluster.received()
    missing = set(cluster.phones) - set(received)
    assert not missing, f"{len(missing)} recipients never got the message"
    assert set(received) <= set(cluster.phones)
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= in_flight, (
        f"{duplicates} messages went twice, more than the {in_flight} rows in flight at the kill"
    )
    assert set(states) <= {"sent", "delivered"}, states

    # The feed's alert was taken once, and the feed fetched by one instance per interval.
    fetches = cluster.feed.fetches()
    assert all(h.pid in (a.pid, b.pid) for h in fetches), "a fetch from an unknown process"
    before, after = _split(fetches, kill_at)
    assert before and {h.pid for h in before} == {a.pid}, "only a (the lease holder) polled"
    assert after and {h.pid for h in after} == {b.pid}, "only b polled after the kill"
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(fetches)]
    assert min(gaps) >= FEED_INTERVAL_S - EARLY_S, (
        f"two fetches of the feed within one interval: gaps {sorted(gaps)[:5]}"
    )
    assert alerts_taken == 1, f"the feed's one alert was stored {alerts_taken} times"

    # The bot's update consumer ran on a, then on b only, and moved within the lease's ttl.
    polls = telegram.polls()
    assert all(h.pid in (a.pid, b.pid) for h in polls), "a getUpdates from an unknown process"
    before, after = _split(polls, kill_at)
    assert before and {h.pid for h in before} == {a.pid}, "b consumed updates while a held the bot"
    assert after and {h.pid for h in after} == {b.pid}
    moved_after = after[0].at - kill_at
    assert moved_after <= BOT_LEASE_TTL_S + MARGIN_S, (
        f"the bot consumer took {moved_after:.1f} s to move to the survivor"
    )
    assert bot_holder == b.pid, f"{BOT_LEASE} is held by pid {bot_holder}, not the survivor"
    # /readyz shows it: b was ready while standing by, and holds the bot now.
    assert standby[0] == 200 and standby[1]["checks"]["roles"]["leases"] == {BOT_LEASE: "standby"}
    assert survivor[0] == 200 and survivor[1]["checks"]["roles"]["leases"] == {BOT_LEASE: "held"}

    # The audit trail of all this is intact.
    assert code == 0, f"`alertcast audit verify` failed ({code}):\n{output}"
