"""A small configuration (an SMS channel, a Telegram post, rules) and alerts for previews."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.config import Config, load_config
from alertcast.dispatch.planner import AudienceSource
from alertcast.dispatch.progress import channel_rate_limits
from alertcast.domain import Alert, Area, Info, Status
from alertcast.preview import Previewer
from alertcast.rules_model import Delivery
from alertcast.store.alerts import StoredAlert
from tests.officers.service_files import write_config_files
from tests.render.alerts import make_alert, make_info

SENDER = "proteccion.civil@example.mx"
SMS_RATE = 10.0
TELEGRAM_RATE = 20.0
PER_SEGMENT = 0.05

RULES = """
[route]

[[route.routes]]
name = "weather-sms"
category = "Met"
channels = ["sms"]
audience = { topics = ["clima"], areas = ["anywhere"] }
approval = "one"
continue = true

[[route.routes]]
name = "weather-post"
category = "Met"
channels = ["canal"]
audience = "channel-post"
approval = "auto"
continue = true

[[route.routes]]
name = "quakes-reviewed"
category = "Geo"
channels = ["sms"]
audience = { topics = ["sismos"], areas = ["anywhere"] }
approval = "two"

[[route.routes]]
name = "drills"
exercise = true
channels = ["sms"]
test_audience = { topics = ["simulacros"], areas = ["anywhere"] }
approval = "one"
"""

SMS_CHANNEL = f"""
name = "sms"
kind = "sms"
[options]
language = "es"
max_segments = 6
transliterate = false
rate_per_s = {SMS_RATE}
cost_per_segment = {PER_SEGMENT}
currency = "MXN"
"""

TELEGRAM_CHANNEL = f"""
name = "canal"
kind = "telegram"
[options]
language = "es"
target = "@alertas"
max_chars = 400
rate_per_s = {TELEGRAM_RATE}
"""


def make_config(
    root: Path, *, templates: Mapping[str, str] | None = None, rules: str = RULES
) -> Config:
    """The configuration under ``root``; ``templates`` maps a path under channels/templates."""
    return load_config(
        write_config_files(
            root,
            channels={"sms": SMS_CHANNEL, "canal": TELEGRAM_CHANNEL},
            rules=rules,
            templates=templates,
        )
    )


class CountedAudience:
    """An audience source with a fixed number of subscribers per language; counts its calls."""

    def __init__(self, per_language: Mapping[str, int]) -> None:
        self.per_language = dict(per_language)
        self.target_calls = 0

    async def languages(self, delivery: Delivery, alert: StoredAlert) -> Sequence[str]:
        return [language for language, n in self.per_language.items() if n]

    async def targets(
        self, delivery: Delivery, alert: StoredAlert, language: str
    ) -> AsyncIterator[str]:
        self.target_calls += 1
        for number in range(self.per_language.get(language, 0)):
            yield f"sub:{language}:{number}"


def previewer(engine: AsyncEngine, config: Config, audience: AudienceSource | None) -> Previewer:
    return Previewer(engine, config, audience=audience, limits=channel_rate_limits(config.channels))


def info(**fields: Any) -> Info:
    """The rendering tests' rain warning, shorter: no description and no web link."""
    values: dict[str, Any] = {
        "headline": "Lluvias en la montaña",
        "description": None,
        "instruction": "Evite cruzar calles inundadas.",
        "web": None,
        "areas": (Area(area_desc="Valle de Bravo"),),
    }
    return make_info(**(values | fields))


def alert(*infos: Info, status: Status = Status.ACTUAL, identifier: str = "PRE-1") -> Alert:
    """An alert sent now, each info expiring six hours later unless it says otherwise."""
    sent = datetime.now(UTC).replace(microsecond=0)
    return make_alert(
        *(i if i.expires is not None else _expiring(i, sent) for i in (infos or (info(),))),
        identifier=identifier,
        sender=SENDER,
        sent=sent,
        status=status,
    )


def _expiring(item: Info, sent: datetime) -> Info:
    from dataclasses import replace

    return replace(item, expires=sent + timedelta(hours=6))
