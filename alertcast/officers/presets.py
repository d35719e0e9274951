"""Ready-made alert texts for ``alertcast send --template NAME``.

Each preset gives the CAP category and event and a headline and instruction
in Spanish and English, so that an officer under pressure only adds where,
how severe and until when. The names match the message templates that
rendering chooses by category (``earthquake``, ``weather``, ``health``,
``road``, ``default``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from alertcast.domain import Category

__all__ = ["PRESETS", "Preset", "preset"]


@dataclass(frozen=True, slots=True)
class Preset:
    """A starting text: category, event, headline and instruction per language (es, en)."""

    name: str
    category: Category
    event: dict[str, str]
    headline: dict[str, str]
    instruction: dict[str, str]

    def text(self, field: str, language: str) -> str:
        values: dict[str, str] = getattr(self, field)
        return values["es" if language.lower().startswith("es") else "en"]


PRESETS: Final[dict[str, Preset]] = {
    p.name: p
    for p in (
        Preset(
            "earthquake",
            Category.GEO,
            {"es": "Sismo", "en": "Earthquake"},
            {"es": "Sismo fuerte: protéjase", "en": "Strong earthquake: take cover"},
            {
                "es": "Aléjese de ventanas, repliéguese en zonas seguras y no use elevadores.",
                "en": "Stay away from windows, take cover in a safe place and do not use lifts.",
            },
        ),
        Preset(
            "weather",
            Category.MET,
            {"es": "Fenómeno meteorológico", "en": "Severe weather"},
            {"es": "Alerta meteorológica", "en": "Severe weather warning"},
            {
                "es": "Permanezca en un lugar seguro y siga los avisos oficiales.",
                "en": "Stay somewhere safe and follow official updates.",
            },
        ),
        Preset(
            "health",
            Category.HEALTH,
            {"es": "Emergencia sanitaria", "en": "Health emergency"},
            {"es": "Aviso de emergencia sanitaria", "en": "Health emergency notice"},
            {
                "es": "Siga las indicaciones de las autoridades de salud.",
                "en": "Follow the advice of the health authorities.",
            },
        ),
        Preset(
            "road",
            Category.TRANSPORT,
            {"es": "Cierre de vialidad", "en": "Road closure"},
            {"es": "Vialidad cerrada", "en": "Road closed"},
            {"es": "Use rutas alternas.", "en": "Use another route."},
        ),
        Preset(
            "default",
            Category.SAFETY,
            {"es": "Aviso de protección civil", "en": "Public safety notice"},
            {"es": "Aviso de protección civil", "en": "Public safety notice"},
            {
                "es": "Siga las indicaciones de protección civil.",
                "en": "Follow the advice of civil protection.",
            },
        ),
    )
}


def preset(name: str) -> Preset:
    """The preset called ``name``; ValueError listing the names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"no template {name!r}; choose one of {', '.join(PRESETS)}") from None
