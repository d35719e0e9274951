"""The answers to keyword messages, in Spanish and English.

Each answer is one SMS: at most 160 GSM-7 characters once
:func:`alertcast.sms.choose_sms_text` has dropped the accents GSM-7 lacks
(``á í ó ú``), with the longest municipality name in place of ``{area}``.
A longer answer would cost two segments per person, and some carriers join
segments out of order. WhatsApp gets the texts with their accents.

Every answer names the way out (``BAJA`` / ``STOP``) and the way in, so a
person who typed something unexpected still learns what to send. The
confirmations are also the consent text the subscriber store audits: what the
person was told when they subscribed or left.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["TEXTS", "keyword_text"]

SUBSCRIBED_AREA = "subscribed_area"
SUBSCRIBED = "subscribed"
AREA_NOT_FOUND = "area_not_found"
UNSUBSCRIBED = "unsubscribed"
HELP = "help"
UNKNOWN = "unknown"
TRY_AGAIN = "try_again"

TEXTS: Mapping[str, Mapping[str, str]] = {
    SUBSCRIBED_AREA: {
        "es": (
            "Alta confirmada: recibirás alertas de {area}. "
            "Cambia la zona enviando ALTA y tu municipio. BAJA: ya no recibirlas."
        ),
        "en": (
            "Subscribed: you will get alerts for {area}. "
            "To change the area send START and your municipality. STOP to end them."
        ),
    },
    SUBSCRIBED: {
        "es": (
            "Alta confirmada: recibirás alertas de emergencia. Para elegir tu zona envía ALTA "
            "y tu municipio (ej. ALTA Iztapalapa). BAJA para dejar de recibirlas."
        ),
        "en": (
            "Subscribed: you will get emergency alerts. To choose your area send START and "
            "your municipality (e.g. START Iztapalapa). STOP to end them."
        ),
    },
    AREA_NOT_FOUND: {
        "es": (
            "Alta confirmada, pero no encontramos ese municipio: envía ALTA y su nombre "
            "(ej. ALTA Iztapalapa). BAJA para dejar de recibir alertas."
        ),
        "en": (
            "Subscribed, but we could not find that municipality: send START and its name "
            "(e.g. START Iztapalapa). STOP to end the alerts."
        ),
    },
    UNSUBSCRIBED: {
        "es": (
            "Baja confirmada: borramos tu número y ya no recibirás alertas. "
            "Para volver, envía ALTA."
        ),
        "en": (
            "Unsubscribed: we deleted your number and you will get no more alerts. "
            "To come back, send START."
        ),
    },
    HELP: {
        "es": (
            "Alertas de emergencia. ALTA y tu municipio: recibirlas (ej. ALTA Iztapalapa). "
            "BAJA: dejar de recibirlas. HELP: in English."
        ),
        "en": (
            "Emergency alerts. START and your municipality: get them (e.g. START Iztapalapa). "
            "STOP: end them. AYUDA: en español."
        ),
    },
    UNKNOWN: {
        "es": (
            "No entendimos tu mensaje. Envía ALTA y tu municipio para recibir alertas, "
            "BAJA para dejarlas o AYUDA. HELP: in English."
        ),
        "en": (
            "We did not understand. Send START and your municipality to get alerts, "
            "STOP to end them, or HELP. AYUDA: en español."
        ),
    },
    TRY_AGAIN: {
        "es": "No pudimos atender tu mensaje en este momento. Por favor, envíalo de nuevo.",
        "en": "We could not process your message right now. Please send it again.",
    },
}
"""Answer name → language → text (``{area}`` is the catalogue's name of the chosen area)."""


def keyword_text(name: str, language: str, **values: str) -> str:
    """The answer ``name`` in ``language`` (Spanish when there is none in it), filled in."""
    texts = TEXTS[name]
    return texts.get(language, texts["es"]).format(**values)
