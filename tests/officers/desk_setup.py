"""A configuration with routes of every approval policy, and alert bodies as officers send them."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alertcast.config import Config, load_config

SENDER = "alertas@pc.example.mx"

RULES = """
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

[[route.routes]]
name = "drills"
exercise = true
channels = ["drills"]
test_audience = "channel-post"
approval = "auto"
"""

CHANNELS = {
    "feed-post": ['target = "@alertas"'],
    "reviewed": ['target = "@revisadas"'],
    "drills": ['target = "@simulacros"', "test_only = true"],
}


def desk_config(root: Path, *, sender: str | None = SENDER) -> Config:
    """Console channels (they reach nobody) routed by :data:`RULES`."""
    (root / "channels").mkdir(exist_ok=True)
    (root / "feeds").mkdir(exist_ok=True)
    for name, options in CHANNELS.items():
        lines = [f'name = "{name}"', 'kind = "console"', "[options]", 'language = "es"', *options]
        (root / "channels" / f"{name}.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "rules.toml").write_text(RULES, encoding="utf-8")
    config_file = root / "alertcast.toml"
    service = f'[service]\nsender = "{sender}"\n' if sender else "[service]\n"
    config_file.write_text(service, encoding="utf-8")
    return load_config(config_file)


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
