"""The preview counts real subscribers through the planner's own audience source."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.areas import AreaCatalogue
from alertcast.domain import Area, Polygon
from alertcast.subscribers.audience import SubscriberAudience
from alertcast.subscribers.crypto import KEY_ENV, SubscriberKeys
from alertcast.subscribers.store import SubscriberStore
from tests.preview.support import RULES, alert, info, make_config, previewer

SECRET = bytes(range(32))

IN_THE_ALERT_AREA = RULES.replace(
    'audience = { topics = ["clima"], areas = ["anywhere"] }',
    'audience = { topics = ["clima"], areas = ["alert"] }',
)

VALLEY = Polygon(
    points=((19.30, -99.20), (19.50, -99.20), (19.50, -99.00), (19.30, -99.00), (19.30, -99.20))
)


@pytest.fixture(autouse=True)
def subscriber_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, base64.b64encode(SECRET).decode("ascii"))


async def test_the_audience_is_who_lives_in_the_area_on_the_topic_in_each_language(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path, rules=IN_THE_ALERT_AREA)
    store = SubscriberStore(engine, SubscriberKeys(SECRET), kinds={"sms": "sms"})
    people = [
        ("+525511110001", "es", ["clima"], (19.40, -99.10)),  # inside
        ("+525511110002", "en", ["clima"], (19.41, -99.11)),  # inside, reads English
        ("+525511110003", "es", ["clima"], (20.60, -100.40)),  # elsewhere
        ("+525511110004", "es", ["sismos"], (19.40, -99.10)),  # another topic
    ]
    for phone, language, topics, point in people:
        await store.subscribe(
            "sms",
            phone,
            language=language,
            topics=topics,
            point=point,
            consent_text="Acepto",
            source="t",
        )
    audience = SubscriberAudience(store, AreaCatalogue(engine))
    english = info(language="en-US", headline="Heavy rain", areas=(Area("Valle", (VALLEY,)),))
    spanish = info(areas=(Area("Valle", (VALLEY,)),))

    preview = await previewer(engine, config, audience).preview(alert(spanish, english))

    [sms] = [r for r in preview.routes if r.channel == "sms"]
    assert sms.audience == 2
    assert [r.language for r in sms.renderings] == ["es-MX", "en-US"]
