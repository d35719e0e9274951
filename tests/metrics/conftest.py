"""Fixtures for the metrics tests: stored alerts and a parser (the engine is the root one)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import lifecycle
from tests.dispatch.conftest import make_alert

_numbers = itertools.count(1)


async def store_alert(engine: AsyncEngine) -> int:
    """Store a fresh alert in force and return its id."""
    alert = make_alert(f"METRICS-{next(_numbers)}")
    stored = await lifecycle.ingest_alert(
        engine, alert, raw=None, source="test", actor="test", now=datetime.now(UTC)
    )
    return stored.result.alert_id


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(exposition: bytes | str) -> Samples:
    """Every sample of an exposition, by (sample name, label set): parsing it checks its format."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float | None:
    """The sample ``name`` with exactly ``labels``, or None when it is absent."""
    return found.get((name, frozenset(labels.items())))


def label_sets(found: Samples, name: str) -> set[frozenset[str]]:
    """The label names each sample called ``name`` carries."""
    return {frozenset(k for k, _ in labels) for sample, labels in found if sample == name}
