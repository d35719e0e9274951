"""A configuration with routes of every approval policy, and alert bodies as officers send them."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alertcast.config import Config, load_config
from tests.officers.service_files import DRILLS_ROUTE, write_config_files

SENDER = "alertas@pc.example.mx"

RULES = f"""
[route]

[[route.routes]]
name = "quakes"
category = "Geo"
channels = ["feed-post"]
approval = "auto"
continue = true

[[route.routes]]
name = "tsunamis"
event = "Tsunami*"
channels = ["reviewed"]
approval = "two"

[[route.routes]]
name = "floods"
event = "Inundaci*"
channels = ["reviewed"]
approval = "one"

{DRILLS_ROUTE}approval = "auto"
"""

CHANNELS = {
    "feed-post": ['target = "@alertas"'],
    "reviewed": ['target = "@revisadas"'],
    "drills": ['target = "@simulacros"', "test_only = true"],
}
"""Console channels (they reach nobody), by name, with their own options."""


def desk_config(root: Path, *, sender: str | None = SENDER) -> Config:
    """Console channels (they reach nobody) routed by :data:`RULES`."""
    channels = {
        name: "\n".join(
            [f'name = "{name}"', 'kind = "console"', "[options]", 'language = "es"', *options]
        )
        + "\n"
        for name, options in CHANNELS.items()
    }
    service = f'[service]\nsender = "{sender}"\n' if sender else "[service]\n"
    return load_config(write_config_files(root, channels=channels, rules=RULES, service=service))


def alert_body(
    now: datetime,
    *,
    status: str = "Actual",
    event: str = "Sismo",
    category: str = "Geo",
    headline: str = "Sismo fuerte en la Ciudad de México",
    **extra: Any,
) -> dict[str, Any]:
    """The JSON an officer sends: no sender, identifier or sent."""
    return {
        "status": status,
        "infos": [
            {
                "language": "es-MX",
                "category": [category],
                "event": event,
                "urgency": "Immediate",
                "severity": "Severe",
                "certainty": "Observed",
                "headline": headline,
                "description": "Se registró un sismo fuerte.",
                "instruction": "Aléjese de ventanas.",
                "expires": (now + timedelta(hours=6)).isoformat(),
                "areas": [
                    {
                        "area_desc": "Ciudad de México",
                        "geocodes": [{"name": "INEGI_CVEGEO", "value": "09"}],
                    }
                ],
            }
        ],
        **extra,
    }
