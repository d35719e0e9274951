"""``/metrics`` of a real ``alertcast serve`` read twice during a fan-out: the figures move.

An operator watching a warning go out sees it on the dashboard: the sent
count rises, the queue shrinks, send latencies accumulate. Here the service
runs as operators run it (a separate process, a feed it polls, the Twilio
fake behind its SMS channel, subscribers as the audience) on each database
kind, and Prometheus' own parser reads what it serves. Neither a phone number
nor a ledger target may appear anywhere in it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from alertcast.metrics import CACHE_S
from tests.ha.cluster import SMS_CHANNEL, Cluster, Instance, cap_alert, eventually, running_cluster

RECIPIENTS = 1500
RATE_PER_S = 150.0
"""SMS segments per second: a fan-out of about ten seconds, long enough to read it twice."""

Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(cluster: Cluster, instance: Instance) -> tuple[str, Samples]:
    """The exposition text and its samples, keyed by (sample name, labels)."""
    async with cluster.http.get(instance.url + "/metrics") as answer:
        assert answer.status == 200, await answer.text()
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = await answer.text()
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return text, samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(
        value for (sample, have), value in samples.items() if sample == name and wanted <= have
    )


def present(samples: Samples, name: str, **labels: str) -> bool:
    wanted = set(labels.items())
    return any(sample == name and wanted <= have for sample, have in samples)


async def test_metrics_move_during_a_fan_out(database_url: str, tmp_path: Path) -> None:
    async with running_cluster(
        tmp_path, database_url, recipients=RECIPIENTS, rate_per_s=RATE_PER_S, bot=False
    ) as cluster:
        instance = await cluster.start_instance("solo")
        cluster.feed.publish(cap_alert("pc-2026-12-06-002", datetime.now(UTC)))

        async def started() -> bool:
            return len(cluster.twilio.messages) >= RECIPIENTS // 10

        await eventually(started, timeout_s=30, what="the fan-out under way", logs=[instance])
        first_text, first = await scrape(cluster, instance)
        first_at, first_sent = time.monotonic(), len(cluster.twilio.messages)

        async def progressed() -> bool:
            # Past the metrics cache, and a good part of the fan-out later.
            return (
                time.monotonic() - first_at > CACHE_S + 0.5
                and len(cluster.twilio.messages) >= first_sent + RECIPIENTS // 10
            )

        await eventually(progressed, timeout_s=30, what="the fan-out going on", logs=[instance])
        second_text, second = await scrape(cluster, instance)
        received_then = len(cluster.twilio.messages)

    # Read during the fan-out: work was still queued at both reads.
    assert received_then < RECIPIENTS, "the fan-out ended before the second read"
    queued = [total(s, "alertcast_queue_depth", channel=SMS_CHANNEL) for s in (first, second)]
    assert queued[0] > queued[1] > 0, f"queue depth {queued} did not fall during the fan-out"

    sent = [
        total(s, "alertcast_deliveries", channel=SMS_CHANNEL, state="sent") for s in (first, second)
    ]
    assert 0 < sent[0] < sent[1], f"deliveries sent {sent} did not rise"
    for s in (first, second):
        assert present(s, "alertcast_deliveries", channel=SMS_CHANNEL, state="pending")

    sends = [total(s, "alertcast_send_seconds_count", channel=SMS_CHANNEL) for s in (first, second)]
    assert 0 < sends[0] < sends[1], f"send latency observations {sends} did not rise"
    latency = total(second, "alertcast_send_seconds_sum", channel=SMS_CHANNEL)
    assert latency > 0

    # No recipient, address or ledger target in any label or value.
    for text in (first_text, second_text):
        assert "+5255" not in text and "sub:" not in text
