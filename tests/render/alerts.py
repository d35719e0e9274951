"""Alerts built in code for the rendering tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from alertcast.domain import (
    Alert,
    AlertKey,
    Area,
    Category,
    Certainty,
    Info,
    MsgType,
    NamedValue,
    Scope,
    Severity,
    Status,
    Urgency,
)

MEXICO = timezone(timedelta(hours=-6))
SENT = datetime(2026, 1, 19, 11, 0, tzinfo=MEXICO)
ALL_KINDS = (
    "sms",
    "telegram",
    "x",
    "mastodon",
    "bluesky",
    "facebook",
    "whatsapp",
    "email",
    "webhook",
    "cap",
    "console",
    "file",
)
TEXT_KINDS = tuple(kind for kind in ALL_KINDS if kind != "cap")


def make_info(**fields: Any) -> Info:
    values: dict[str, Any] = {
        "categories": (Category.MET,),
        "event": "Lluvias intensas",
        "urgency": Urgency.EXPECTED,
        "severity": Severity.SEVERE,
        "certainty": Certainty.LIKELY,
        "language": "es-MX",
        "headline": "Lluvias intensas en la Ciudad de México",
        "description": "Se esperan lluvias de 50 a 75 mm con descargas eléctricas.",
        "instruction": "Evite cruzar calles inundadas y aléjese de zonas bajas.",
        "web": "https://alertas.example.mx/aviso/123",
        "areas": (Area(area_desc="Ciudad de México"),),
    }
    values.update(fields)
    return Info(**values)


def make_alert(*infos: Info, **fields: Any) -> Alert:
    values: dict[str, Any] = {
        "identifier": "MX-TEST-1",
        "sender": "proteccion.civil@example.mx",
        "sent": SENT,
        "status": Status.ACTUAL,
        "msg_type": MsgType.ALERT,
        "scope": Scope.PUBLIC,
        "infos": infos or (make_info(),),
    }
    if fields.get("msg_type") in (MsgType.UPDATE, MsgType.CANCEL):
        values["references"] = (AlertKey("proteccion.civil@example.mx", "MX-TEST-0", SENT),)
    values.update(fields)
    return Alert(**values)


def bilingual(**fields: Any) -> Alert:
    spanish = make_info()
    english = make_info(
        language="en-US",
        event="Heavy rain",
        headline="Heavy rain in Mexico City",
        description="50 to 75 mm of rain with lightning are expected.",
        instruction="Do not cross flooded streets and keep away from low areas.",
        areas=(Area(area_desc="Mexico City"),),
    )
    return make_alert(spanish, english, **fields)


def road_alert(**fields: Any) -> Alert:
    info = make_info(
        categories=(Category.TRANSPORT,),
        event="Cierre de circulación",
        headline="Cierre en la autopista Cuernavaca - Acapulco",
        description="Cierre a la circulación por atención de accidente (maniobras para el"
        " retiro de la unidad siniestrada).",
        instruction="",
        parameters=(
            NamedValue("road", "Autopista Cuernavaca - Acapulco"),
            NamedValue("km", "349"),
            NamedValue("direction", "Cuernavaca"),
            NamedValue("road_status", "closure"),
        ),
        areas=(Area(area_desc="Autopista Cuernavaca - Acapulco, km 349"),),
    )
    return make_alert(info, **fields)


def visible_start(kind: str, text: str) -> str:
    """The first characters a reader sees (tags of HTML channels removed)."""
    from alertcast.text_safety import html_to_text

    return html_to_text(text) if kind == "telegram" else text
