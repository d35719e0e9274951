"""What each channel will show: one pure ``render()`` for every channel kind.

A duty officer must see, before anything goes out, exactly what every channel
will carry. :func:`render` turns an alert into that: the text of each message
(or SMS, or post), its length in the channel's own unit, what had to be cut
and why. It performs no I/O beyond reading template files and knows no
provider SDK, so the preview, the tests and the senders all see the same
result.

How a render is made:

1. **Language.** The ``<info>`` in the audience's language (exact tag, then
   primary subtag), else the first one in the channel's fallback order, else
   the alert's first info, with a warning. The template is taken in the
   language of that info when one exists, else in the audience's language,
   else in the fallback order.
2. **Template.** The one asked for, else the channel's ``options.template``,
   else chosen from the alert (:func:`choose_template`).
3. **Neutralising.** Every piece of feed text passes through
   :func:`alertcast.text_safety.neutralise` for the channel before it reaches
   the template; HTML channels are autoescaped by the template engine.
4. **Prefix.** For any status other than Actual, ``render()`` puts the status
   word in front of the template's output ("SIMULACRO", "EXERCISE", "PRUEBA",
   "TEST", "SISTEMA", "SYSTEM", "BORRADOR", "DRAFT"), in the audience's
   language and also in the message's when the two differ. The template never
   sees it and so cannot remove it. This holds for Updates and Cancels too,
   since the status of the message itself is what counts; a Cancel that says
   Actual but withdraws an exercise can be marked with
   ``exercise_of_reference=True`` (the caller, who holds the referenced
   alert, knows; the alert alone does not). On Telegram every message of a
   split carries the prefix; in an e-mail the subject and both bodies do; a
   WhatsApp template gets it in its first variable. The CAP channel sends
   the alert itself, whose ``<status>`` says it.
5. **Fitting.** When the text is over the channel's limit (on Telegram: when
   it does not fit in ``max_messages`` messages), fields are shortened at a
   word boundary or left out, least important first: the description; the
   expiry and onset times, contact and sender name (left out whole: half a
   date misleads); the area; the event. Only then are the headline and the
   instruction shortened, together to a common length so that neither is
   sacrificed whole to the other, after which the instruction gets back
   whatever room is left; the link goes last. Each step is reported in
   ``warnings``. If the template's fixed text alone is too long, the message
   is cut after its last whole grapheme that fits (on Telegram, between
   tags), and that is reported too.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from alertcast.channel_profiles import (
    ChannelProfile,
    grapheme_clusters,
    grapheme_length,
    language_candidates,
    measure,
    profile_for,
    utf16_length,
)
from alertcast.domain import (
    Alert,
    Area,
    Category,
    Certainty,
    Circle,
    Info,
    MsgType,
    NamedValue,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
)
from alertcast.errors import AlertcastError
from alertcast.sms import choose_sms_text, count_sms, cut_at_word
from alertcast.templates import ResolvedTemplate, TemplateError, TemplateSet, markup_helpers
from alertcast.templates import template_set as shared_template_set
from alertcast.text_safety import (
    escape_html,
    escape_markdown,
    html_to_text,
    neutralise,
    telegram_html_problems,
)

__all__ = [
    "LinkFacet",
    "Part",
    "RenderError",
    "Rendering",
    "WhatsAppTemplate",
    "choose_template",
    "render",
    "sample_contexts",
    "select_info",
    "split_telegram_html",
    "status_prefix",
]

WEBHOOK_PAYLOAD_VERSION = 1

_PREFIX_WORDS: dict[Status, dict[str, str]] = {
    Status.EXERCISE: {"es": "SIMULACRO", "en": "EXERCISE"},
    Status.TEST: {"es": "PRUEBA", "en": "TEST"},
    Status.SYSTEM: {"es": "SISTEMA", "en": "SYSTEM"},
    Status.DRAFT: {"es": "BORRADOR", "en": "DRAFT"},
}


class RenderError(AlertcastError):
    """A render could not be made (a template problem, or a channel that cannot carry the alert)."""


@dataclass(frozen=True, slots=True)
class LinkFacet:
    """A Bluesky link facet: the UTF-8 byte range of the link text and where it points."""

    byte_start: int
    byte_end: int
    uri: str

    def to_json(self) -> dict[str, Any]:
        """The ``app.bsky.richtext.facet`` record form."""
        return {
            "index": {"byteStart": self.byte_start, "byteEnd": self.byte_end},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": self.uri}],
        }


@dataclass(frozen=True, slots=True)
class Part:
    """One message as sent: its text and its length in the channel's unit."""

    text: str
    length: int
    encoding: str | None = None
    """SMS only: ``gsm7`` or ``ucs2``."""
    segments: int | None = None
    """SMS only: how many segments the message is billed and sent as."""
    facets: tuple[LinkFacet, ...] = ()

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "text": self.text,
            "length": self.length,
            "encoding": self.encoding,
            "segments": self.segments,
        }
        if self.facets:
            record["facets"] = [facet.to_json() for facet in self.facets]
        return record


@dataclass(frozen=True, slots=True)
class WhatsAppTemplate:
    """A message-template send: the approved template and its variables, in order.

    Variables are headline (with the status prefix), area, instruction, link.
    """

    name: str
    language: str
    variables: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "language": self.language, "variables": list(self.variables)}


@dataclass(frozen=True, slots=True)
class Rendering:
    """The result of :func:`render`."""

    channel: str
    kind: str
    language: str
    """The language of the text: the chosen info's, else the template's."""
    parts: tuple[Part, ...]
    truncated: bool
    warnings: tuple[str, ...]
    limit: int | None
    """The per-part limit in the channel's unit (segments for SMS); None: no limit."""
    template: str | None = None
    template_file: str | None = None
    prefix: str | None = None
    subject: str | None = None
    html: str | None = None
    whatsapp_template: WhatsAppTemplate | None = None
    payload: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def text(self) -> str:
        """All parts, one after the other (for a quick look)."""
        return "\n\n".join(part.text for part in self.parts)

    def to_json(self) -> dict[str, Any]:
        """The shape ``alertcast render --json`` prints."""
        record: dict[str, Any] = {
            "channel": self.channel,
            "kind": self.kind,
            "language": self.language,
            "template": self.template,
            "parts": [part.to_json() for part in self.parts],
            "truncated": self.truncated,
            "warnings": list(self.warnings),
            "limit": self.limit,
            "prefix": self.prefix,
        }
        if self.subject is not None:
            record["subject"] = self.subject
        if self.html is not None:
            record["html"] = self.html
        if self.whatsapp_template is not None:
            record["whatsapp_template"] = self.whatsapp_template.to_json()
        return record


# --------------------------------------------------------------------------- choosing


def select_info(alert: Alert, languages: Sequence[str]) -> tuple[Info | None, str | None]:
    """The info to render and, when it is not in the first language asked for, why.

    For each language in order: an info with exactly that tag, then one with
    the same primary subtag (``es-MX`` takes ``es-419``). None of them: the
    first info.
    """
    if not alert.infos:
        return None, None
    for position, wanted in enumerate(languages):
        tag = wanted.lower()
        primary = tag.split("-")[0]
        exact = [info for info in alert.infos if info.language.lower() == tag]
        close = [info for info in alert.infos if info.language.lower().split("-")[0] == primary]
        matches = exact or close
        if matches:
            found = matches[0]
            if position == 0:
                return found, None
            return found, (
                f"no info in {languages[0]}; used {found.language} from the fallback order"
            )
    first = alert.infos[0]
    asked = ", ".join(languages) or "(none)"
    return first, f"no info in {asked}; used the alert's first info ({first.language})"


_EARTHQUAKE = re.compile(r"earthquake|quake|seism|sismo|s[ií]smic|terremoto|temblor", re.I)


def choose_template(alert: Alert, info: Info | None) -> str:
    """The default template for an alert.

    Cancel (or an info whose response is AllClear) → ``cancel``; Update →
    ``update``; category Geo with an earthquake-like event → ``earthquake``;
    Met → ``weather``; Health → ``health``; Transport → ``road``; otherwise
    ``default``. ``manual`` is only used when asked for by name.
    """
    if alert.msg_type is MsgType.CANCEL:
        return "cancel"
    if info is not None and ResponseType.ALL_CLEAR in info.response_types:
        return "cancel"
    if alert.msg_type is MsgType.UPDATE:
        return "update"
    if info is None:
        return "default"
    categories = set(info.categories)
    event_codes = " ".join(code.value for code in info.event_codes)
    if Category.GEO in categories and (
        _EARTHQUAKE.search(info.event) or re.search(r"\bEQW\b", event_codes)
    ):
        return "earthquake"
    if Category.MET in categories:
        return "weather"
    if Category.HEALTH in categories:
        return "health"
    if Category.TRANSPORT in categories:
        return "road"
    return "default"


def status_prefix(
    alert: Alert,
    audience_language: str,
    text_language: str | None = None,
    *,
    exercise_of_reference: bool = False,
) -> str | None:
    """The word(s) every rendered text of this alert must start with, or None for Actual.

    In the audience's language, followed by the text's language when it is a
    different one: a Spanish-speaking reader of an English-only exercise sees
    "SIMULACRO / EXERCISE".
    """
    status = alert.status
    if status is Status.ACTUAL and exercise_of_reference:
        status = Status.EXERCISE
    words = _PREFIX_WORDS.get(status)
    if words is None:
        return None
    chosen = [
        words[primary]
        for primary in (_primary(audience_language), _primary(text_language or ""))
        if primary in words
    ]
    unique = list(dict.fromkeys(chosen)) or [words["en"]]
    return " / ".join(unique)


def _primary(tag: str) -> str:
    return tag.split("-")[0].lower()


# --------------------------------------------------------------------------- context

_LABELS: dict[str, dict[str, str]] = {
    "es": {
        "Extreme": "extrema",
        "Severe": "severa",
        "Moderate": "moderada",
        "Minor": "menor",
        "Immediate": "inmediata",
        "Expected": "esperada",
        "Future": "futura",
        "Past": "pasada",
        "Observed": "observado",
        "Likely": "probable",
        "Possible": "posible",
        "Unlikely": "improbable",
        "Unknown": "desconocida",
    },
    "en": {},
}

_ROAD_NAME_KEYS = ("road", "highway", "autopista", "carretera", "route", "roadname")
_KM_KEYS = ("km", "kilometro", "kilómetro", "kilometre", "kilometer", "kilometros")
_DIRECTION_KEYS = ("direction", "direccion", "dirección", "sentido")
_STATUS_KEYS = ("road_status", "roadstatus", "condition", "estado", "status")
_PLACE_KEYS = ("place", "lugar", "tramo")
_QUEUE_KM_KEYS = ("queue_km", "fila_km")
_QUEUE_KEYS = ("queue", "fila", "filas")
_BOTH_DIRECTIONS = ("ambos sentidos", "ambas direcciones", "both directions", "both ways")
_CAUSE_KEYS = ("cause", "causa", "motivo")
_ROAD_TYPED = re.compile(
    r"^(aut\b|aut\.|autopista|carretera|carr\.|libramiento|circuito|perif[eé]rico|calzada|"
    r"highway|hwy|route|interstate|i-|us-|sr-|freeway|motorway)",
    re.I,
)
_ROAD_STATUS_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("reopened", re.compile(r"reabiert|reanud|liberad|reabre|re-?open|cleared", re.I)),
    ("partial", re.compile(r"parcial|partial|reducci[oó]n de carril|lane closure|carril", re.I)),
    ("contraflow", re.compile(r"contraflujo|contraflow", re.I)),
    ("traffic", re.compile(r"carga vehicular|congesti|fila|tr[aá]fico|traffic|delay", re.I)),
    ("closure", re.compile(r"cierre|cerrad|closed|closure|bloque", re.I)),
)
_STATUS_ALIASES = {
    "partially_closed": "partial",
    "contraflow": "contraflow",
    "contraflujo": "contraflow",
    "heavy_traffic": "traffic",
    "other": "notice",
    "closed": "closure",
    "closure": "closure",
    "cierre": "closure",
    "total": "closure",
    "partial": "partial",
    "parcial": "partial",
    "traffic": "traffic",
    "congestion": "traffic",
    "carga": "traffic",
    "reopened": "reopened",
    "open": "reopened",
    "abierta": "reopened",
    "notice": "notice",
    "aviso": "notice",
}


def _parameter(info: Info | None, keys: Sequence[str]) -> str | None:
    if info is None:
        return None
    wanted = {key.lower() for key in keys}
    for pair in info.parameters:
        if pair.name.strip().lower() in wanted and pair.value.strip():
            return pair.value
    return None


def _parameter_like(info: Info | None, needles: Sequence[str]) -> str | None:
    if info is None:
        return None
    for pair in info.parameters:
        name = pair.name.lower()
        if any(needle in name for needle in needles) and pair.value.strip():
            return pair.value
    return None


def _road_status(info: Info | None) -> str:
    declared = _parameter(info, _STATUS_KEYS)
    if declared:
        alias = _STATUS_ALIASES.get(declared.strip().lower())
        if alias:
            return alias
    if info is None:
        return "notice"
    haystack = " ".join(filter(None, (info.event, info.headline, info.description)))
    for status, pattern in _ROAD_STATUS_WORDS:
        if pattern.search(haystack):
            return status
    return "notice"


def _format_time(value: datetime | None, language: str) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    offset = value.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    zone = "UTC" if minutes == 0 else f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    if _primary(language) == "es":
        return f"{value:%d/%m/%Y %H:%M} ({zone})"
    return f"{value:%Y-%m-%d %H:%M} {zone}"


_MAX_LINK = 2000


def _trusted_link(
    alert: Alert, info: Info | None, profile: ChannelProfile
) -> tuple[str | None, str | None]:
    """The link to the full alert and, when the issuer's was refused, why."""
    if profile.alert_url:
        url = profile.alert_url.replace("{identifier}", quote(alert.identifier, safe=""))
        url = url.replace("{sender}", quote(alert.sender, safe=""))
        return url, None
    web = (info.web or "").strip() if info is not None else ""
    if not web:
        return None, None
    parts = urlsplit(web)
    valid = (
        parts.scheme.lower() in ("http", "https")
        and bool(parts.netloc)
        and len(web) <= _MAX_LINK
        and not any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in web)
        and not any(ch in web for ch in "<>\"'`")
    )
    if not valid:
        return None, f"the info's web link {web[:80]!r} is not an http(s) address and was left out"
    return web, None


def _without_status_marker(headline: str, status: Status) -> str:
    """The headline without a leading "SIMULACRO:" or "[TEST]" when the prefix will say it.

    Only the words of the alert's own status are removed, and only because
    :func:`render` always puts them back in front: "SIMULACRO: SIMULACRO: ..."
    says nothing more.
    """
    words = _PREFIX_WORDS.get(status)
    if not words:
        return headline
    pattern = "|".join(re.escape(word) for word in words.values())
    # "Simulacro de sismo" names the drill: "SIMULACRO: Sismo", not "SIMULACRO: De sismo".
    stripped = re.sub(
        rf"^\[?(?:{pattern})\]?\s*(?:[:\-–—.]\s*|(?:de|del|of)\s+)?", "", headline, flags=re.I
    )
    if not stripped:
        return headline
    return stripped[:1].upper() + stripped[1:] if stripped != headline else headline


def build_context(
    alert: Alert,
    info: Info | None,
    *,
    profile: ChannelProfile,
    markup: str,
    language: str,
    url: str | None,
) -> dict[str, Any]:
    """What a template sees: neutralised strings, localised labels, helpers.

    Every value that came from the feed is already neutralised for the
    channel; autoescaping (HTML channels) happens when the template prints it.
    An absent CAP field is an empty string (times: None, which prints as
    nothing), so ``{% if instruction %}`` is the way to test for one.

    Fields: ``headline`` (the info's headline, else its event), ``event``,
    ``description``, ``instruction``, ``area`` (area names joined by "; "),
    ``areas``, ``severity``/``urgency``/``certainty`` (words in the
    template's language) and ``*_code`` (the CAP values), ``category``,
    ``categories``, ``response_types``, ``sender_name``, ``contact``,
    ``effective``, ``onset``, ``expires``, ``sent`` (formatted), ``url`` (the
    link to the full alert), ``parameters`` (name → first value; use
    ``parameters.get('name')``), ``road`` (``road``, ``typed``, ``km``,
    ``km_from``, ``km_to``, ``place``, ``direction``, ``both_directions``,
    ``cause``, ``queue_km``, ``queue``, ``status``: closure, partial,
    contraflow, traffic, reopened or notice), ``quake`` (``magnitude``,
    ``depth``), ``alert`` (``identifier``, ``sender``, ``sent``, ``status``,
    ``msg_type``, ``scope``, ``note``, ``references``: how many), plus
    ``status``, ``msg_type``, ``is_update``, ``is_cancel``, ``has_info``,
    ``language``, ``channel_kind``. Helpers: ``b()``, ``i()``,
    ``link(url, label)``, ``icon(emoji)`` (nothing on SMS); filter
    ``sentence`` (adds a full stop when missing).
    """
    kind = profile.kind

    def line(text: str | None) -> str:
        value = neutralise(text, kind, multiline=False)
        return escape_markdown(value) if profile.escape_markdown else value

    def block(text: str | None) -> str:
        value = neutralise(text, kind, multiline=True)
        return escape_markdown(value) if profile.escape_markdown else value

    primary = _primary(language)
    labels = _LABELS.get(primary, {})

    def label(value: str | None) -> str:
        return labels.get(value or "", (value or "").lower())

    areas = list(dict.fromkeys(line(area.area_desc) for area in (info.areas if info else ())))
    areas = [area for area in areas if area]
    event = line(info.event) if info else ""
    headline = _without_status_marker((line(info.headline) if info else "") or event, alert.status)
    parameters: dict[str, str] = {}
    for pair in info.parameters if info else ():
        parameters.setdefault(line(pair.name), line(pair.value))
    road_name = line(_parameter(info, _ROAD_NAME_KEYS))
    km = line(_parameter(info, _KM_KEYS))
    km_range = re.fullmatch(r"(\d+(?:[.,]\d+)?)\s*(?:-|–|a|al)\s*(\d+(?:[.,]\d+)?)", km)
    direction = line(_parameter(info, _DIRECTION_KEYS))
    road = {
        "road": road_name,
        "typed": bool(_ROAD_TYPED.match(road_name)),
        "km": km,
        "km_from": km_range.group(1) if km_range else "",
        "km_to": km_range.group(2) if km_range else "",
        "place": line(_parameter(info, _PLACE_KEYS)),
        "direction": direction,
        "both_directions": direction.lower() in _BOTH_DIRECTIONS,
        "cause": line(_parameter(info, _CAUSE_KEYS)),
        "queue_km": line(_parameter(info, _QUEUE_KM_KEYS)),
        "queue": line(_parameter(info, _QUEUE_KEYS)),
        "status": _road_status(info),
    }
    quake = {
        "magnitude": line(_parameter_like(info, ("magnitud",))),
        "depth": line(_parameter_like(info, ("depth", "profundidad"))),
    }
    context: dict[str, Any] = {
        "language": primary,
        "channel_kind": kind,
        "status": alert.status.value,
        "msg_type": alert.msg_type.value,
        "is_update": alert.msg_type is MsgType.UPDATE,
        "is_cancel": alert.msg_type is MsgType.CANCEL,
        "has_info": info is not None,
        "event": event,
        "headline": headline,
        "description": block(info.description) if info else "",
        "instruction": block(info.instruction) if info else "",
        "area": "; ".join(areas),
        "areas": tuple(areas),
        "severity": label(info.severity.value) if info else "",
        "urgency": label(info.urgency.value) if info else "",
        "certainty": label(info.certainty.value) if info else "",
        "severity_code": info.severity.value if info else "",
        "urgency_code": info.urgency.value if info else "",
        "certainty_code": info.certainty.value if info else "",
        "category": info.categories[0].value if info and info.categories else "",
        "categories": tuple(c.value for c in info.categories) if info else (),
        "response_types": tuple(r.value for r in info.response_types) if info else (),
        "sender_name": line(info.sender_name) if info else "",
        "contact": line(info.contact) if info else "",
        "effective": _format_time(info.effective, language) if info else None,
        "onset": _format_time(info.onset, language) if info else None,
        "expires": _format_time(info.expires, language) if info else None,
        "sent": _format_time(alert.sent, language),
        "url": url or "",
        "parameters": parameters,
        "road": road,
        "quake": quake,
        "alert": {
            "identifier": line(alert.identifier),
            "sender": line(alert.sender),
            "sent": _format_time(alert.sent, language),
            "status": alert.status.value,
            "msg_type": alert.msg_type.value,
            "scope": alert.scope.value,
            "note": block(alert.note),
            "references": len(alert.references),
        },
    }
    context.update(markup_helpers(markup, kind))
    return context


# --------------------------------------------------------------------------- fitting

_SPACE_RUN = re.compile(r" {2,}")
_SPACE_RUN = re.compile(r" {2,}")


def _tidy(text: str) -> str:
    """Single spaces, no spaces around lines, at most one blank line, nothing around the whole.

    A helper that prints nothing (``icon()`` on SMS, an empty field) leaves no
    stray space behind.
    """
    lines = [_SPACE_RUN.sub(" ", line).strip(" ") for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_CUT_FIRST = ("description",)
"""Shortened at a word boundary, else left out, before anything else."""
_DROPPABLE = ("expires", "onset", "contact", "sender_name")
"""Left out whole when there is no room: half a date or a phone number misleads."""
_CUT_NEXT = ("area", "event")
_ESSENTIAL = ("headline", "instruction")
"""Shortened together, so that neither is sacrificed whole to the other."""


@dataclass
class _Fitting:
    """The fitting ladder: shorten or leave out fields, least important first, until it fits."""

    produce: Callable[[Mapping[str, Any]], str]
    fits: Callable[[str], bool]
    ellipsis: str
    warnings: list[str]
    truncated: bool = False

    def fits_with(self, context: Mapping[str, Any]) -> bool:
        return self.fits(self.produce(context))

    def run(self, context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        text = self.produce(context)
        if self.fits(text):
            return text, context
        self.truncated = True
        current = dict(context)
        for name in (*_CUT_FIRST, *_DROPPABLE, *_CUT_NEXT):
            value = current.get(name)
            if not value or not isinstance(value, str):
                continue
            if name not in _DROPPABLE:
                shortened = self.shorten(current, name, value)
                if shortened is not None:
                    current[name] = shortened
                    return self.produce(current), current
            current[name] = ""
            self.warnings.append(f"{name} left out to fit ({len(value)} characters)")
            if self.fits_with(current):
                return self.produce(current), current
        if self.shorten_essentials(current):
            return self.produce(current), current
        if current.get("url"):
            # No room for headline, instruction and link together: the link goes first.
            self.warnings.append("the link to the full alert left out to fit")
            current["url"] = ""
            if self.fits_with(current) or self.shorten_essentials(current):
                return self.produce(current), current
        for name in _ESSENTIAL:
            if current.get(name):
                self.warnings.append(f"{name} left out to fit ({len(current[name])} characters)")
                current[name] = ""
        return self.produce(current), current

    def shorten(self, context: dict[str, Any], name: str, value: str) -> str | None:
        """``value`` cut at a word boundary to the most that fits, or None when no word does."""
        base = dict(context)

        def fits(candidate: str) -> bool:
            return self.fits_with({**base, name: candidate})

        shortened = cut_at_word(value, fits, ellipsis=self.ellipsis)
        if shortened is not None and shortened != value:
            self.warnings.append(
                f"{name} shortened from {len(value)} to {len(shortened)} characters to fit"
            )
        return shortened

    def longest(self, context: Mapping[str, Any], name: str, value: str) -> str | None:
        base = dict(context)

        def fits(candidate: str) -> bool:
            return self.fits_with({**base, name: candidate})

        return cut_at_word(value, fits, ellipsis=self.ellipsis)

    def shorten_essentials(self, current: dict[str, Any]) -> bool:
        """Cut headline and instruction to a common length, then give any room left back.

        Returns True when the text fits with what is left of them; otherwise
        leaves ``current`` as it was.
        """
        originals = {name: current[name] for name in _ESSENTIAL if current.get(name)}
        if not originals:
            return False
        low, high = 0, max(len(value) for value in originals.values())
        best: dict[str, str] | None = None
        while low <= high:
            middle = (low + high) // 2
            candidate = {
                name: _cut_to_length(value, middle, self.ellipsis)
                for name, value in originals.items()
            }
            if self.fits_with({**current, **candidate}):
                best, low = candidate, middle + 1
            else:
                high = middle - 1
        if best is None:
            return False
        current.update(best)
        # The instruction saves lives: it gets the room a short headline left unused.
        for name in reversed(_ESSENTIAL):
            if name in originals and current[name] != originals[name]:
                longer = self.longest(current, name, originals[name])
                if longer is not None and len(longer) > len(current[name]):
                    current[name] = longer
        for name, value in originals.items():
            if not current[name]:
                self.warnings.append(f"{name} left out to fit ({len(value)} characters)")
            elif current[name] != value:
                self.warnings.append(
                    f"{name} shortened from {len(value)} to {len(current[name])} characters to fit"
                )
        return True


def _cut_to_length(value: str, length: int, ellipsis: str) -> str:
    """``value`` cut at a word boundary to at most ``length`` characters plus the ellipsis."""
    if len(value) <= length:
        return value
    return (
        cut_at_word(value, lambda text: len(text) <= length + len(ellipsis), ellipsis=ellipsis)
        or ""
    )


def _hard_cut(text: str, fits: Callable[[str], bool], ellipsis: str) -> str:
    """The longest run of whole graphemes (plus ellipsis) that fits; words may be cut here."""
    clusters = grapheme_clusters(text)
    low, high = 0, len(clusters)
    best = ""
    while low <= high:
        middle = (low + high) // 2
        candidate = "".join(clusters[:middle]).rstrip() + ellipsis
        if fits(candidate):
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best


# --------------------------------------------------------------------------- Telegram HTML

_HTML_TOKEN = re.compile(r"(<[^<>]*>|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);)")
_WORD = re.compile(r"\s+|\S+")
_TAG_NAME = re.compile(r"^</?\s*([a-zA-Z][a-zA-Z0-9-]*)")


@dataclass(frozen=True, slots=True)
class _Atom:
    raw: str
    kind: str  # "open", "close", "entity", "text"
    name: str = ""


def _atoms(html: str) -> list[_Atom]:
    atoms: list[_Atom] = []
    for piece in _HTML_TOKEN.split(html):
        if not piece:
            continue
        if piece.startswith("<"):
            match = _TAG_NAME.match(piece)
            name = match.group(1).lower() if match else ""
            atoms.append(_Atom(piece, "close" if piece.startswith("</") else "open", name))
        elif piece.startswith("&") and piece.endswith(";"):
            atoms.append(_Atom(piece, "entity"))
        else:
            atoms.extend(_Atom(word, "text") for word in _WORD.findall(piece))
    return atoms


def _break_quality(atom: _Atom) -> int:
    if atom.kind != "text" or not atom.raw[-1:].isspace():
        return 0
    if "\n\n" in atom.raw:
        return 3
    return 2 if "\n" in atom.raw else 1


def split_telegram_html(html: str, limit: int, part_prefix: str = "") -> list[str]:
    """Split Telegram HTML into messages of at most ``limit`` UTF-16 units each.

    Never inside a tag or an entity: a tag open at a split is closed at the end
    of the message and opened again at the start of the next. Splits prefer a
    blank line, then a line end, then a space, in the second half of a
    message; a single word longer than a whole message is split between
    graphemes. Every message starts with ``part_prefix`` (the exercise prefix).
    """
    atoms = _atoms(html)
    parts: list[str] = []
    stack: list[_Atom] = []
    index = 0
    prefix_size = utf16_length(part_prefix)
    while index < len(atoms):
        while index < len(atoms) and atoms[index].kind == "text" and atoms[index].raw.isspace():
            index += 1
        if index >= len(atoms):
            break
        opening = part_prefix + "".join(atom.raw for atom in stack)
        size = prefix_size + sum(utf16_length(atom.raw) for atom in stack)
        current = list(stack)
        position = index
        breaks: list[tuple[int, int, int, list[_Atom]]] = []  # quality, end, size, stack
        while position < len(atoms):
            atom = atoms[position]
            following = _apply(current, atom)
            closers = sum(len(atom.name) + 3 for atom in following)
            atom_size = utf16_length(atom.raw)
            if size + atom_size + closers > limit:
                break
            size += atom_size
            current = following
            position += 1
            breaks.append((_break_quality(atom), position, size, list(current)))
        if position == len(atoms):
            parts.append(_close(opening + _body(atoms[index:position]), current))
            break
        if position == index:
            atom = atoms[index]
            room = limit - size - sum(len(a.name) + 3 for a in stack)
            if atom.kind != "text" or room <= 0:
                raise ValueError(f"a message of {limit} cannot hold {atom.raw[:40]!r}")
            head, tail = _split_word(atom.raw, room)
            atoms[index : index + 1] = [_Atom(head, "text"), _Atom(tail, "text")]
            continue
        end, new_stack = _best_break(breaks, limit)
        parts.append(_close(opening + _body(atoms[index:end]), new_stack))
        stack = [atom for atom in new_stack]
        index = end
    return parts or [part_prefix]


def _apply(stack: list[_Atom], atom: _Atom) -> list[_Atom]:
    if atom.kind == "open":
        return [*stack, atom]
    if atom.kind == "close":
        for position in range(len(stack) - 1, -1, -1):
            if stack[position].name == atom.name:
                return stack[:position] + stack[position + 1 :]
    return stack


def _body(atoms: Sequence[_Atom]) -> str:
    return "".join(atom.raw for atom in atoms).rstrip()


def _close(text: str, stack: Sequence[_Atom]) -> str:
    return text + "".join(f"</{atom.name}>" for atom in reversed(stack))


def _best_break(
    breaks: Sequence[tuple[int, int, int, list[_Atom]]], limit: int
) -> tuple[int, list[_Atom]]:
    for quality in (3, 2, 1):
        usable = [b for b in breaks if b[0] >= quality and b[2] * 2 >= limit]
        if usable:
            _, end, _, stack = usable[-1]
            return end, stack
    with_space = [b for b in breaks if b[0] >= 1]
    chosen = with_space[-1] if with_space else breaks[-1]
    return chosen[1], chosen[3]


def _split_word(word: str, room: int) -> tuple[str, str]:
    clusters = grapheme_clusters(word)
    head = ""
    for count, cluster in enumerate(clusters):
        if utf16_length(head + cluster) > room:
            if count == 0:
                # Not even one grapheme fits: split its code points.
                return cluster[:1], word[1:]
            return head, word[len(head) :]
        head += cluster
    return head, ""


# --------------------------------------------------------------------------- render


def render(
    alert: Alert,
    channel: str | ChannelProfile | Any,
    *,
    language: str | None = None,
    template: str | None = None,
    fallback_languages: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
    templates: TemplateSet | Path | None = None,
    session_open: bool = False,
    exercise_of_reference: bool = False,
) -> Rendering:
    """Render ``alert`` for one channel.

    ``channel`` is a channel kind (``"sms"``), a configured channel
    (:class:`alertcast.config.ChannelConfig`) or a :class:`ChannelProfile`;
    ``options`` are laid over its options. ``language`` is the audience's
    (default: the channel's ``options.language``, else es-MX);
    ``fallback_languages`` replaces the channel's fallback order. ``templates``
    is a :class:`TemplateSet` or the folder of template overrides
    (``channels/templates``). ``session_open`` says a WhatsApp conversation
    is inside its 24-hour window (free text); otherwise an approved template
    is used. ``exercise_of_reference`` marks a message that withdraws or
    updates an exercise although its own status says Actual.

    Raises RenderError for a template that is missing, broken or produces
    markup the channel refuses, and ValueError for an unknown channel kind.
    """
    profile = channel if isinstance(channel, ChannelProfile) else profile_for(channel, options)
    if isinstance(channel, ChannelProfile) and options:
        profile = profile_for(_ProfileSource(profile), options)
    if fallback_languages is not None:
        profile = replace(profile, fallback_languages=tuple(fallback_languages))
    if isinstance(templates, TemplateSet):
        template_set = templates
    else:
        template_set = shared_template_set(templates.resolve() if templates else None)
    audience = language or profile.language
    candidates = language_candidates(profile, audience)
    info, language_warning = select_info(alert, candidates)
    warnings: list[str] = [language_warning] if language_warning else []
    if profile.kind == "cap":
        return _render_cap(alert, profile, info, audience, warnings, exercise_of_reference)

    name = template or profile.template or choose_template(alert, info)
    template_languages = [info.language, *candidates] if info is not None else list(candidates)
    try:
        resolved = template_set.resolve(name, template_languages, profile.name, profile.kind)
    except TemplateError as exc:
        raise RenderError(str(exc)) from exc
    prefix = status_prefix(
        alert, audience, resolved.language, exercise_of_reference=exercise_of_reference
    )
    url, link_warning = _trusted_link(alert, info, profile)
    if link_warning:
        warnings.append(link_warning)
    job = _Job(alert, info, profile, template_set, resolved, prefix, url, warnings)
    try:
        return job.run(session_open=session_open)
    except TemplateError as exc:
        raise RenderError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class _ProfileSource:
    """Lets options be laid over an existing profile through :func:`profile_for`."""

    profile: ChannelProfile

    @property
    def kind(self) -> str:
        return self.profile.kind

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def options(self) -> Mapping[str, Any]:
        return self.profile.options


@dataclass
class _Job:
    alert: Alert
    info: Info | None
    profile: ChannelProfile
    templates: TemplateSet
    resolved: ResolvedTemplate
    prefix: str | None
    url: str | None
    warnings: list[str]
    truncated: bool = False

    @property
    def language(self) -> str:
        return self.info.language if self.info is not None else self.resolved.language

    def context(self, markup: str) -> dict[str, Any]:
        return build_context(
            self.alert,
            self.info,
            profile=self.profile,
            markup=markup,
            language=self.resolved.language,
            url=self.url,
        )

    def produce(self, markup: str) -> Callable[[Mapping[str, Any]], str]:
        def run(context: Mapping[str, Any]) -> str:
            body = _tidy(self.templates.render(self.resolved, markup, context))
            return self.prefixed(body)

        return run

    def prefixed(self, body: str) -> str:
        if not self.prefix:
            return body
        return f"{self.prefix}: {body}" if body else self.prefix

    def result(self, parts: Sequence[Part], **extra: Any) -> Rendering:
        return Rendering(
            channel=self.profile.name,
            kind=self.profile.kind,
            language=self.language,
            parts=tuple(parts),
            truncated=self.truncated,
            warnings=tuple(self.warnings),
            limit=self.profile.max_length,
            template=self.resolved.name,
            template_file=str(self.resolved.path),
            prefix=self.prefix,
            **extra,
        )

    def fit(self, markup: str, fits: Callable[[str], bool], ellipsis: str = "…") -> str:
        fitting = _Fitting(self.produce(markup), fits, ellipsis, self.warnings)
        text, _ = fitting.run(self.context(markup))
        self.truncated = self.truncated or fitting.truncated
        if not fits(text):
            self.truncated = True
            cut = _hard_cut(text, fits, ellipsis)
            self.warnings.append(
                "the template's fixed text is longer than the channel allows; the message"
                " was cut after its last whole character that fits"
            )
            text = cut
        return text

    def run(self, *, session_open: bool) -> Rendering:
        kind = self.profile.kind
        if kind == "sms":
            return self.sms()
        if kind == "telegram":
            return self.telegram()
        if kind == "whatsapp" and not session_open:
            return self.whatsapp_template()
        if kind == "email":
            return self.email()
        if kind == "webhook":
            return self.webhook()
        if kind == "bluesky":
            return self.bluesky()
        limit = self.profile.max_length
        if limit is None:
            text = self.produce("text")(self.context("text"))
        else:
            text = self.fit("text", lambda t: measure(self.profile, t) <= limit)
        return self.result([Part(text, measure(self.profile, text))])

    # ---- SMS

    def sms(self) -> Rendering:
        max_segments = self.profile.max_length or 1
        transliterate = self.profile.transliterate

        def fits(text: str) -> bool:
            chosen, _ = choose_sms_text(text, transliterate=transliterate)
            return count_sms(chosen).segments <= max_segments

        text = self.fit("text", fits, "...")
        chosen, converted = choose_sms_text(text, transliterate=transliterate)
        counted = count_sms(chosen)
        if converted:
            before = count_sms(text).segments
            self.warnings.append(
                f"transliterated to GSM-7 ({before} → {counted.segments} segment(s))"
            )
        part = Part(chosen, counted.units, counted.encoding, counted.segments)
        return self.result([part])

    # ---- Telegram

    def telegram(self) -> Rendering:
        limit = self.profile.max_length or 4096
        part_prefix = f"{self.prefix}: " if self.prefix else ""
        max_messages = self.profile.max_messages if self.profile.split else 1

        def body_of(text: str) -> str:
            return (
                text[len(part_prefix) :] if part_prefix and text.startswith(part_prefix) else text
            )

        def split(text: str) -> list[str] | None:
            try:
                return split_telegram_html(body_of(text), limit, part_prefix)
            except ValueError:  # a single tag (a very long link) is larger than a message
                return None

        def fits(text: str) -> bool:
            if utf16_length(text) <= limit:
                return True
            if max_messages == 1:
                return False
            pieces = split(text)
            return pieces is not None and len(pieces) <= max_messages

        produce = self.produce("html")
        fitting = _Fitting(produce, fits, "…", self.warnings)
        text, _ = fitting.run(self.context("html"))
        self.truncated = fitting.truncated
        problems = telegram_html_problems(text)
        if problems:
            raise TemplateError(
                f"renders HTML Telegram refuses: {problems[0]}", str(self.resolved.path)
            )
        if utf16_length(text) <= limit:
            parts = [text]
        else:
            pieces = split(text)
            if pieces is None:
                # Markup that cannot be split: send its text, escaped, cut to one message.
                plain = html_to_text(body_of(text))
                cut = _hard_cut(
                    plain, lambda t: utf16_length(part_prefix + escape_html(t)) <= limit, "…"
                )
                pieces = [part_prefix + escape_html(cut)]
                self.truncated = True
                self.warnings.append("formatting dropped and the text cut to fit one message")
            if len(pieces) > max_messages:
                self.truncated = True
                self.warnings.append(
                    f"only the first {max_messages} of {len(pieces)} messages are sent"
                    " (the template's fixed text is too long for the channel)"
                )
                pieces = pieces[:max_messages]
            elif len(pieces) > 1:
                self.warnings.append(f"split into {len(pieces)} messages")
            parts = pieces
        return self.result([Part(part, utf16_length(part)) for part in parts])

    # ---- WhatsApp

    def whatsapp_template(self) -> Rendering:
        context = self.context("text")
        limit = self.profile.max_variable_chars
        values = {
            "headline": context["headline"] or context["event"],
            "area": context["area"],
            "instruction": context["instruction"],
            "url": context["url"],
        }
        if self.prefix:
            values["headline"] = f"{self.prefix}: {values['headline']}".rstrip(": ")
        variables: list[str] = []
        for name, value in values.items():
            flat = re.sub(r"\s+", " ", value).strip()
            if len(flat) > limit:
                shortened = cut_at_word(flat, lambda t: len(t) <= limit) or flat[: limit - 1] + "…"
                if name == "headline" and self.prefix and not shortened.startswith(self.prefix):
                    shortened = self.prefix
                self.truncated = True
                self.warnings.append(
                    f"{name} shortened from {len(flat)} to {len(shortened)} characters"
                    " (template variable limit)"
                )
                flat = shortened
            variables.append(flat or "-")
        language = self.profile.whatsapp_template_language or _WHATSAPP_LANGUAGES.get(
            _primary(self.resolved.language), _primary(self.resolved.language)
        )
        template = WhatsAppTemplate(self.profile.whatsapp_template, language, tuple(variables))
        preview = "\n".join(variables)
        return self.result([Part(preview, utf16_length(preview))], whatsapp_template=template)

    # ---- e-mail

    def email(self) -> Rendering:
        text = self.produce("text")(self.context("text"))
        html_context = self.context("html")
        html_body = _tidy(self.templates.render(self.resolved, "html", html_context))
        context = self.context("text")
        subject_source = context["headline"] or context["event"] or self.alert.msg_type.value
        subject_source = re.sub(r"\s+", " ", subject_source)
        limit = self.profile.max_subject_chars
        subject = self.prefixed(subject_source)
        if len(subject) > limit:
            cut = cut_at_word(subject, lambda t: len(t) <= limit)
            if cut is None or (self.prefix and not cut.startswith(self.prefix)):
                cut = _hard_cut(subject, lambda t: len(t) <= limit, "…")
            self.warnings.append(f"subject shortened from {len(subject)} to {len(cut)} characters")
            subject = cut
        html = _email_document(subject, self.prefix, html_body, self.resolved.language)
        return self.result([Part(text, len(text))], subject=subject, html=html)

    # ---- webhook

    def webhook(self) -> Rendering:
        from alertcast.alert_json import alert_to_json

        text = self.produce("text")(self.context("text"))
        try:
            alert_record: dict[str, Any] | None = alert_to_json(self.alert)
        except ValueError as exc:
            alert_record = None
            self.warnings.append(f"the alert cannot be carried as JSON exactly: {exc}")
        payload = {
            "version": WEBHOOK_PAYLOAD_VERSION,
            "channel": self.profile.name,
            "language": self.language,
            "template": self.resolved.name,
            "prefix": self.prefix,
            "text": text,
            "alert": alert_record,
        }
        body = json.dumps(payload, ensure_ascii=False)
        return self.result([Part(body, len(body))], payload=payload)

    # ---- Bluesky

    def bluesky(self) -> Rendering:
        limit = self.profile.max_length or 300
        max_bytes = self.profile.max_bytes or 3000
        url = self.url

        def fits(text: str) -> bool:
            shown, _ = _bluesky_links(text, url)
            return grapheme_length(shown) <= limit and len(shown.encode("utf-8")) <= max_bytes

        text = self.fit("text", fits)
        shown, facets = _bluesky_links(text, url)
        return self.result([Part(shown, grapheme_length(shown), facets=facets)])


_WHATSAPP_LANGUAGES = {"es": "es_MX", "en": "en_US"}


def _short_link_text(url: str) -> str:
    shown = re.sub(r"^https?://(www\.)?", "", url, flags=re.I)
    return shown if len(shown) <= 30 else shown[:27] + "…"


def _bluesky_links(text: str, url: str | None) -> tuple[str, tuple[LinkFacet, ...]]:
    """Show ``url`` shortened, the way Bluesky apps do, with a facet pointing to the whole URL."""
    if not url or url not in text:
        return text, ()
    shown = _short_link_text(url)
    pieces = text.split(url)
    out = pieces[0]
    facets: list[LinkFacet] = []
    for piece in pieces[1:]:
        start = len(out.encode("utf-8"))
        out += shown
        facets.append(LinkFacet(start, len(out.encode("utf-8")), url))
        out += piece
    return out, tuple(facets)


def _email_document(subject: str, prefix: str | None, body: str, language: str) -> str:
    banner = (
        f'<p style="font-weight:bold;font-size:1.4em;color:#b00000">{escape_html(prefix)}</p>\n'
        if prefix
        else ""
    )
    return (
        f'<!DOCTYPE html>\n<html lang="{escape_html(language)}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape_html(subject)}</title>\n</head>\n<body>\n{banner}"
        f'<div style="white-space:pre-line">{body}</div>\n</body>\n</html>\n'
    )


def _render_cap(
    alert: Alert,
    profile: ChannelProfile,
    info: Info | None,
    audience: str,
    warnings: list[str],
    exercise_of_reference: bool,
) -> Rendering:
    from alertcast.cap import to_cap_xml

    try:
        xml = to_cap_xml(alert).decode("utf-8")
    except ValueError as exc:
        raise RenderError(f"the alert cannot be sent as CAP 1.2: {exc}") from exc
    prefix = status_prefix(alert, audience, exercise_of_reference=exercise_of_reference)
    if exercise_of_reference and alert.status is Status.ACTUAL:
        warnings.append(
            "the CAP document says Actual; it withdraws or updates an exercise, which only its"
            " references show"
        )
    return Rendering(
        channel=profile.name,
        kind=profile.kind,
        language=info.language if info is not None else audience,
        parts=(Part(xml, len(xml)),),
        truncated=False,
        warnings=tuple(warnings),
        limit=None,
        prefix=prefix,
    )


# --------------------------------------------------------------------------- samples


def sample_alerts() -> list[Alert]:
    """Representative alerts templates are checked against: every field a render offers.

    An Actual earthquake with every optional field, parameters for road and
    quake and two languages; an exercise Update on a road; a Cancel without
    info; a minimal alert with only the required fields.
    """
    sent = datetime(2026, 1, 19, 11, 0, tzinfo=UTC)
    area = Area(
        area_desc="Ciudad de México",
        circles=(Circle(19.4326, -99.1332, 30.0),),
        geocodes=(NamedValue("INEGI_CVEGEO", "09"),),
    )
    parameters = (
        NamedValue("road", "Aut. México - Cuernavaca"),
        NamedValue("km", "45"),
        NamedValue("direction", "Cuernavaca"),
        NamedValue("cause", "Atención de accidente"),
        NamedValue("road_status", "closure"),
        NamedValue("Magnitude", "7.1"),
        NamedValue("Depth", "20 km"),
    )
    full_info = Info(
        categories=(Category.GEO, Category.TRANSPORT),
        event="Sismo",
        urgency=Urgency.IMMEDIATE,
        severity=Severity.SEVERE,
        certainty=Certainty.OBSERVED,
        language="es-MX",
        response_types=(ResponseType.SHELTER,),
        audience="Población general",
        effective=sent,
        onset=sent,
        expires=sent + timedelta(hours=6),
        sender_name="Protección Civil",
        headline="Alerta sísmica en la Ciudad de México",
        description="Se detectó un sismo fuerte frente a la costa de Guerrero.",
        instruction="Repliéguese a una zona segura. No use elevadores.",
        web="https://alertas.example.org/a/1",
        contact="911",
        parameters=parameters,
        areas=(area,),
    )
    english = replace(
        full_info,
        language="en-US",
        event="Earthquake",
        headline="Earthquake alert for Mexico City",
        description="A strong earthquake was detected off the coast of Guerrero.",
        instruction="Move to a safe area. Do not use lifts.",
    )
    full = Alert(
        identifier="SAMPLE-1",
        sender="sample@alertcast.invalid",
        sent=sent,
        status=Status.ACTUAL,
        msg_type=MsgType.ALERT,
        scope=Scope.PUBLIC,
        note="Muestra",
        infos=(full_info, english),
    )
    exercise_update = replace(
        full,
        identifier="SAMPLE-2",
        status=Status.EXERCISE,
        msg_type=MsgType.UPDATE,
        references=(full.key,),
    )
    cancel = Alert(
        identifier="SAMPLE-3",
        sender="sample@alertcast.invalid",
        sent=sent,
        status=Status.ACTUAL,
        msg_type=MsgType.CANCEL,
        scope=Scope.PUBLIC,
        references=(full.key,),
    )
    minimal_info = Info(
        categories=(Category.OTHER,),
        event="Aviso",
        urgency=Urgency.UNKNOWN,
        severity=Severity.UNKNOWN,
        certainty=Certainty.UNKNOWN,
        language="es-MX",
    )
    minimal = replace(full, identifier="SAMPLE-4", note=None, infos=(minimal_info,))
    return [full, exercise_update, cancel, minimal]


def sample_contexts(kind: str, markup: str, language: str) -> list[dict[str, Any]]:
    """Template contexts from :func:`sample_alerts`, as a render for ``kind`` would build them."""
    profile = profile_for(kind)
    contexts = []
    for alert in sample_alerts():
        info, _ = select_info(alert, [language, "es", "en"])
        url, _ = _trusted_link(alert, info, profile)
        contexts.append(
            build_context(alert, info, profile=profile, markup=markup, language=language, url=url)
        )
    return contexts
