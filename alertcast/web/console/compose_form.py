"""The compose form: its fields, their defaults, and the alert JSON it stands for.

The form is a CAP alert with the fields a duty officer fills under pressure;
everything else is fixed (``msg_type`` Alert, ``scope`` Public, the office's
sender) or left for the desk to fill (identifier, sent). The same JSON shape
is what ``alertcast parse`` prints and the API takes, and ``static/preview.js``
builds it the same way for the live preview, so the preview shows what
submitting will create.

Checks here are the ones a person can fix in the form (a missing headline, a
polygon that is not ``lat,lon`` pairs); each names its field. The desk checks
the alert again when it is created.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from alertcast.areas import split_code
from alertcast.domain import Category, Certainty, Severity, Status, Urgency

STATUSES: Final = (Status.ACTUAL.value, Status.EXERCISE.value)
CATEGORIES: Final = tuple(c.value for c in Category)
URGENCIES: Final = tuple(u.value for u in Urgency)
SEVERITIES: Final = tuple(s.value for s in Severity)
CERTAINTIES: Final = tuple(c.value for c in Certainty)
LANGUAGES: Final = ("es", "en")
MAX_EXPIRES_HOURS: Final = 24 * 14
MAX_TEXT: Final = 4000
MAX_HEADLINE: Final = 240

DEFAULTS: Final[Mapping[str, str]] = {
    "status": Status.ACTUAL.value,
    "template": "",
    "category": Category.SAFETY.value,
    "event": "",
    "urgency": Urgency.IMMEDIATE.value,
    "severity": Severity.SEVERE.value,
    "certainty": Certainty.LIKELY.value,
    "headline": "",
    "description": "",
    "instruction": "",
    "area_desc": "",
    "area_geocode": "",
    "area_polygon": "",
    "language": "es",
    "expires_hours": "6",
}
FIELDS: Final = tuple(DEFAULTS)


@dataclass(frozen=True, slots=True)
class Preset:
    """A starting point: the category that selects the message template, and an event name."""

    name: str
    category: str
    event: Mapping[str, str]


PRESETS: Final = (
    Preset("earthquake", Category.GEO.value, {"es": "Sismo", "en": "Earthquake"}),
    Preset("weather", Category.MET.value, {"es": "Fenómeno meteorológico", "en": "Severe weather"}),
    Preset(
        "health", Category.HEALTH.value, {"es": "Emergencia sanitaria", "en": "Health emergency"}
    ),
    Preset("road", Category.TRANSPORT.value, {"es": "Cierre de vialidad", "en": "Road closure"}),
    Preset(
        "default",
        Category.SAFETY.value,
        {"es": "Aviso de protección civil", "en": "Public safety notice"},
    ),
)
"""One per message template that an officer's alert can pick (see ``render.choose_template``)."""
PRESETS_BY_NAME: Final = {preset.name: preset for preset in PRESETS}

_SPLIT_CODES = re.compile(r"[\s,;]+")


@dataclass(slots=True)
class ComposeForm:
    """The form's values as typed (to show again) and what they mean."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    alert_json: dict[str, Any] | None = None

    @property
    def exercise(self) -> bool:
        return self.values.get("status") == Status.EXERCISE.value


def initial_values(query: Mapping[str, str]) -> dict[str, str]:
    """The form's first values: defaults, a preset (``?template=``), a status (``?status=``)."""
    values = dict(DEFAULTS)
    status = query.get("status", "")
    if status in STATUSES:
        values["status"] = status
    language = query.get("language", "")
    if language in LANGUAGES:
        values["language"] = language
    preset = PRESETS_BY_NAME.get(query.get("template", ""))
    if preset is not None:
        values["template"] = preset.name
        values["category"] = preset.category
        values["event"] = preset.event[values["language"]]
    return values


def _choice(
    values: dict[str, str],
    errors: dict[str, str],
    name: str,
    allowed: tuple[str, ...],
    message: str,
) -> str:
    value = values[name]
    if value not in allowed:
        errors[name] = message
    return value


def parse_polygon(text: str) -> list[list[float]]:
    """``"lat,lon lat,lon ..."`` as a closed ring of ``[lat, lon]``; ValueError if not one."""
    points: list[list[float]] = []
    for pair in text.split():
        lat_text, sep, lon_text = pair.partition(",")
        if not sep:
            raise ValueError(pair)
        lat, lon = float(lat_text), float(lon_text)
        if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
            raise ValueError(pair)
        points.append([lat, lon])
    if points and points[0] != points[-1]:
        points.append(list(points[0]))
    if len(points) < 4:
        raise ValueError(text)
    return points


def parse_geocodes(text: str) -> list[dict[str, str]]:
    """``"SCHEME:value ..."`` (spaces, commas or new lines between) as CAP geocodes."""
    geocodes = []
    for code in _SPLIT_CODES.split(text.strip()):
        if code:
            scheme, value = split_code(code)
            geocodes.append({"name": scheme, "value": value})
    return geocodes


def read_form(
    form: Mapping[str, Any],
    gettext: Callable[[str], str],
    *,
    sender: str,
    now: datetime,
) -> ComposeForm:
    """Check the posted form; the alert JSON when it is complete, else errors by field."""
    _ = gettext
    values = {name: str(form.get(name, "") or "").strip() for name in FIELDS}
    result = ComposeForm(values)
    errors = result.errors
    status = _choice(values, errors, "status", STATUSES, _("Choose Actual or Exercise."))
    category = _choice(values, errors, "category", CATEGORIES, _("Choose a category."))
    urgency = _choice(values, errors, "urgency", URGENCIES, _("Choose an urgency."))
    severity = _choice(values, errors, "severity", SEVERITIES, _("Choose a severity."))
    certainty = _choice(values, errors, "certainty", CERTAINTIES, _("Choose a certainty."))
    language = _choice(values, errors, "language", LANGUAGES, _("Choose Spanish or English."))
    if values["template"] and values["template"] not in PRESETS_BY_NAME:
        errors["template"] = _("Choose one of the listed templates.")
    for name in ("event", "headline", "description", "area_desc"):
        if not values[name]:
            errors[name] = _("This field is required.")
    if len(values["headline"]) > MAX_HEADLINE:
        errors["headline"] = _("The headline is too long.")
    for name in ("description", "instruction", "area_desc", "event"):
        if len(values[name]) > MAX_TEXT:
            errors[name] = _("This text is too long.")
    try:
        hours = float(values["expires_hours"].replace(",", "."))
        if not math.isfinite(hours) or not 0 < hours <= MAX_EXPIRES_HOURS:
            raise ValueError(hours)
    except ValueError:
        errors["expires_hours"] = _("Give the hours until it expires: more than 0, at most 336.")
        hours = 0.0
    geocodes: list[dict[str, str]] = []
    polygons: list[list[list[float]]] = []
    try:
        geocodes = parse_geocodes(values["area_geocode"])
    except ValueError:
        errors["area_geocode"] = _("Write each code as SCHEME:value, e.g. INEGI_CVEGEO:09015.")
    if values["area_polygon"]:
        try:
            polygons = [parse_polygon(values["area_polygon"])]
        except ValueError:
            errors["area_polygon"] = _(
                "Write the polygon as lat,lon pairs separated by spaces (at least three points)."
            )
    if errors:
        return result
    info: dict[str, Any] = {
        "language": language,
        "category": [category],
        "event": values["event"],
        "urgency": urgency,
        "severity": severity,
        "certainty": certainty,
        "expires": (now + timedelta(hours=hours)).isoformat(),
        "headline": values["headline"],
        "description": values["description"],
        "instruction": values["instruction"] or None,
        "areas": [{"area_desc": values["area_desc"], "geocodes": geocodes, "polygons": polygons}],
    }
    result.alert_json = {
        "sender": sender,
        "status": status,
        "msg_type": "Alert",
        "scope": "Public",
        "infos": [info],
    }
    return result
