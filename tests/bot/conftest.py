"""Fixtures for the citizens' bot: the fake Bot API; store and catalogue on each database."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import lifecycle
from alertcast.areas import AreaCatalogue
from alertcast.demo.fake_telegram import FakeTelegramAPI
from alertcast.subscribers.crypto import SubscriberKeys
from alertcast.subscribers.model import Subscriber
from alertcast.subscribers.store import SubscriberStore
from tests.builders import quake_alert

AREAS = [
    ("09007", "Iztapalapa"),
    ("09003", "Coyoacán"),
    ("09015", "Cuauhtémoc"),
    *((f"20{n:03d}", f"San Juan {n:02d}") for n in range(1, 12)),
]
"""Three Mexico City boroughs and eleven "San Juan" towns (more than a page of results)."""

TEST_KEY = base64.b64encode(bytes(range(32))).decode()
_alert_numbers = count(1)

StoreAlert = Callable[[], Awaitable[int]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramAPI]:
    # The bot answers one person a few times a second; flood limits are the channel's tests.
    async with FakeTelegramAPI(limits=False) as api:
        yield api


class RecordingStore:
    """The real store, keeping the opt-in and opt-out texts it was given for assertions."""

    def __init__(self, inner: SubscriberStore) -> None:
        self.inner = inner
        self.opt_ins: list[dict[str, Any]] = []
        self.opt_outs: list[dict[str, Any]] = []

    async def subscribe(self, channel: str, address: str, **kwargs: Any) -> Subscriber:
        self.opt_ins.append({"channel": channel, "address": address, **kwargs})
        return await self.inner.subscribe(channel, address, **kwargs)

    async def unsubscribe(self, channel: str, address: str, **kwargs: Any) -> bool:
        self.opt_outs.append({"channel": channel, "address": address, **kwargs})
        return await self.inner.unsubscribe(channel, address, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def store(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> RecordingStore:
    monkeypatch.setenv("ALERTCAST_SUBSCRIBER_KEY", TEST_KEY)
    return RecordingStore(SubscriberStore(engine, SubscriberKeys.from_env()))


def _square(lon: float, lat: float) -> list[list[list[float]]]:
    return [[[lon, lat], [lon + 0.1, lat], [lon + 0.1, lat + 0.1], [lon, lat + 0.1], [lon, lat]]]


@pytest.fixture
async def catalogue(engine: AsyncEngine, tmp_path: Path) -> AreaCatalogue:
    features = [
        {
            "type": "Feature",
            "properties": {"CVEGEO": code, "NOMGEO": name},
            "geometry": {"type": "Polygon", "coordinates": _square(-99.5 + i * 0.1, 19.0)},
        }
        for i, (code, name) in enumerate(AREAS)
    ]
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    catalogue = AreaCatalogue(engine)
    imported = await catalogue.import_geojson(
        path, scheme="INEGI_CVEGEO", code_field="CVEGEO", name_field="NOMGEO", actor="test"
    )
    assert imported == len(AREAS)
    return catalogue


@pytest.fixture
def store_alert(engine: AsyncEngine) -> StoreAlert:
    """Store an alert and return its id (people answer alerts that exist)."""

    async def store() -> int:
        now = datetime.now(UTC).replace(microsecond=0)
        alert = quake_alert(
            f"BOT-ALERT-{next(_alert_numbers)}", sender="proteccion.civil@example.mx", sent=now
        )
        stored = await lifecycle.ingest_alert(
            engine, alert, raw=None, source="test", actor="test", now=now
        )
        assert stored.result.alert_id is not None
        return stored.result.alert_id

    return store
