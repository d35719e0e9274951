"""Our public CAP feed and alert pages: what a ``cap`` channel published, for everyone.

* ``GET /cap/{id}.xml``: the alert as CAP 1.2 (:func:`alertcast.cap_writer.to_cap_xml`,
  checked against the bundled OASIS schema as it is written).
* ``GET /cap/index.atom``: an Atom index of the latest published alerts,
  newest first, in the CAP-over-Atom form NWS, MeteoAlarm and Google Public
  Alerts read: each entry links its CAP document with
  ``type="application/cap+xml"`` and repeats the main CAP fields
  (``cap:identifier``, ``cap:sender``, ``cap:sent``, ``cap:status``,
  ``cap:msgType``, ``cap:expires``...) so a reader can skip what it holds.
  Expired and cancelled alerts stay listed (the index is a publication log,
  not the list of alerts in force, so it never claims to be complete).
* ``GET /alerts/{id}``: a page for people, in Spanish or English
  (``?lang=en`` or ``Accept-Language``), server-rendered and escaped; a drill
  carries an unmistakable "SIMULACRO / EXERCISE" banner, and a cancelled,
  superseded or expired alert says so at the top.

Only alerts in ``published_alerts`` exist here; any other id is a 404,
indistinguishable from an id that was never used, so an unpublished alert
leaks nothing. The feed answers with a strong ``ETag`` (a hash of the
body), ``Last-Modified`` (the publication time) and ``Cache-Control: public,
max-age=60``, and a ``304`` to a matching ``If-None-Match`` (or, without
one, a satisfied ``If-Modified-Since``), so a thousand pollers cost little.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import structlog
from aiohttp import web
from lxml import etree
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.cap_writer import to_cap_xml
from alertcast.domain import CAP12_NAMESPACE, Alert, Status, format_cap_datetime
from alertcast.errors import StoreError
from alertcast.store.alerts import AlertState, StoredAlert, stored_from_row
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import alerts, published_alerts

log = structlog.get_logger(__name__)

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
CACHE_CONTROL = "public, max-age=60"
INDEX_LIMIT = 100
"""Entries in the Atom index: the latest publications."""

_TEMPLATES = Path(__file__).resolve().parent / "templates"
_LANGUAGES = ("es", "en")

# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Published:
    """A published alert and when it was published."""

    stored: StoredAlert
    published_at: datetime


def _alert_id(raw: str) -> int | None:
    # Digits only, and bounded: the id is a BIGINT, and "1e3" or "-1" name no alert.
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


async def published_alert(engine: AsyncEngine, alert_id: int) -> Published | None:
    """The alert if it was published, else None (never an unpublished one)."""
    query = (
        select(alerts, published_alerts.c.published_at)
        .join(published_alerts, published_alerts.c.alert_id == alerts.c.id)
        .where(alerts.c.id == alert_id)
    )
    with database_errors(f"cannot read published alert {alert_id}"):
        async with read_only(engine) as conn:
            row = (await conn.execute(query)).first()
    if row is None:
        return None
    return Published(stored_from_row(row), row.published_at)


async def latest_published(engine: AsyncEngine, limit: int = INDEX_LIMIT) -> list[Published]:
    """The latest published alerts, newest publication first."""
    query = (
        select(alerts, published_alerts.c.published_at)
        .join(published_alerts, published_alerts.c.alert_id == alerts.c.id)
        .order_by(published_alerts.c.published_at.desc(), alerts.c.id.desc())
        .limit(limit)
    )
    with database_errors("cannot list published alerts"):
        async with read_only(engine) as conn:
            rows = (await conn.execute(query)).all()
    return [Published(stored_from_row(row), row.published_at) for row in rows]


# --------------------------------------------------------------------------- caching


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def _http_date(value: datetime) -> str:
    return format_datetime(value.astimezone(UTC).replace(microsecond=0), usegmt=True)


def not_modified(request: web.Request, etag: str, last_modified: datetime) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = [tag.strip() for tag in if_none_match.split(",")]
        # Weak comparison for If-None-Match: W/"x" matches "x".
        return "*" in tags or etag in [t.removeprefix("W/") for t in tags]
    since = request.headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    if when.tzinfo is None:
        return False
    return last_modified.replace(microsecond=0) <= when


def cached_response(
    request: web.Request, body: bytes, content_type: str, last_modified: datetime
) -> web.Response:
    """``body`` with validators and caching headers, or a 304 when the client has it."""
    etag = strong_etag(body)
    headers = {
        "ETag": etag,
        "Last-Modified": _http_date(last_modified),
        "Cache-Control": CACHE_CONTROL,
    }
    if not_modified(request, etag, last_modified):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = content_type
    return web.Response(body=body, headers=headers)


# --------------------------------------------------------------------------- Atom


def _cap_field(parent: etree._Element, name: str, value: str | None) -> None:
    if value:
        etree.SubElement(parent, f"{{{CAP12_NAMESPACE}}}{name}").text = value


def atom_index(items: Sequence[Published], site_url: str) -> bytes:
    """The Atom index of ``items`` (newest first), linking each CAP document."""
    atom = f"{{{ATOM_NAMESPACE}}}"
    feed = etree.Element(
        f"{atom}feed",
        nsmap={None: ATOM_NAMESPACE, "cap": CAP12_NAMESPACE},  # type: ignore[dict-item]
    )
    etree.SubElement(feed, f"{atom}id").text = f"{site_url}/cap/index.atom"
    etree.SubElement(
        feed, f"{atom}title"
    ).text = "alertcast — alertas publicadas / published alerts"
    updated = max((item.published_at for item in items), default=datetime(1970, 1, 1, tzinfo=UTC))
    etree.SubElement(feed, f"{atom}updated").text = format_cap_datetime(updated.astimezone(UTC))
    etree.SubElement(feed, f"{atom}generator").text = "alertcast"
    etree.SubElement(
        feed, f"{atom}link", href=f"{site_url}/cap/index.atom", rel="self", type=ATOM_MEDIA_TYPE
    )
    author = etree.SubElement(feed, f"{atom}author")
    etree.SubElement(author, f"{atom}name").text = urlsplit(site_url).hostname or "alertcast"
    for item in items:
        feed.append(_entry(item, site_url))
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _entry(item: Published, site_url: str) -> etree._Element:
    atom = f"{{{ATOM_NAMESPACE}}}"
    alert = item.stored.alert
    alert_id = item.stored.id
    info = alert.infos[0] if alert.infos else None
    entry = etree.Element(f"{atom}entry")
    cap_url = f"{site_url}/cap/{alert_id}.xml"
    etree.SubElement(entry, f"{atom}id").text = cap_url
    title = (info.headline or info.event) if info else f"{alert.msg_type.value} {alert.identifier}"
    prefix = "" if alert.status is Status.ACTUAL else f"{alert.status.value.upper()}: "
    etree.SubElement(entry, f"{atom}title").text = prefix + title
    etree.SubElement(entry, f"{atom}updated").text = format_cap_datetime(
        item.published_at.astimezone(UTC)
    )
    etree.SubElement(entry, f"{atom}published").text = format_cap_datetime(alert.sent)
    etree.SubElement(entry, f"{atom}link", href=cap_url, rel="alternate", type=CAP_MEDIA_TYPE)
    etree.SubElement(
        entry, f"{atom}link", href=f"{site_url}/alerts/{alert_id}", rel="related", type="text/html"
    )
    if info is not None and info.description:
        etree.SubElement(entry, f"{atom}summary").text = info.description
    _cap_field(entry, "identifier", alert.identifier)
    _cap_field(entry, "sender", alert.sender)
    _cap_field(entry, "sent", format_cap_datetime(alert.sent))
    _cap_field(entry, "status", alert.status.value)
    _cap_field(entry, "msgType", alert.msg_type.value)
    _cap_field(entry, "scope", alert.scope.value)
    if info is not None:
        _cap_field(entry, "event", info.event)
        _cap_field(entry, "urgency", info.urgency.value)
        _cap_field(entry, "severity", info.severity.value)
        _cap_field(entry, "certainty", info.certainty.value)
        areas = "; ".join(area.area_desc for area in info.areas if area.area_desc)
        _cap_field(entry, "areaDesc", areas)
    expires = alert.expires
    _cap_field(entry, "expires", format_cap_datetime(expires) if expires else None)
    return entry


# --------------------------------------------------------------------------- the page

_LABELS: dict[str, dict[str, str]] = {
    "es": {
        "title": "Alerta",
        "exercise": "SIMULACRO / EXERCISE",
        "test": "PRUEBA / TEST",
        "system": "SISTEMA / SYSTEM",
        "draft": "BORRADOR / DRAFT",
        "not_real": "Esto no es una emergencia real.",
        "cancelled": "CANCELADA: esta alerta fue cancelada por su emisor.",
        "superseded": "REEMPLAZADA: hay un mensaje más reciente sobre este evento.",
        "withdrawn": "RETIRADA: el emisor ya no la publica.",
        "expired": "EXPIRADA: esta alerta ya no está vigente.",
        "event": "Evento",
        "severity": "Gravedad",
        "urgency": "Urgencia",
        "certainty": "Certeza",
        "area": "Zona",
        "description": "Descripción",
        "instruction": "Qué hacer",
        "sender": "Emisor",
        "sent": "Emitida",
        "expires": "Vence",
        "more": "Más información",
        "contact": "Contacto",
        "cap": "Documento CAP",
        "other": "English",
    },
    "en": {
        "title": "Alert",
        "exercise": "EXERCISE / SIMULACRO",
        "test": "TEST / PRUEBA",
        "system": "SYSTEM / SISTEMA",
        "draft": "DRAFT / BORRADOR",
        "not_real": "This is not a real emergency.",
        "cancelled": "CANCELLED: this alert was cancelled by its issuer.",
        "superseded": "SUPERSEDED: a newer message about this event exists.",
        "withdrawn": "WITHDRAWN: the issuer no longer lists it.",
        "expired": "EXPIRED: this alert is no longer in force.",
        "event": "Event",
        "severity": "Severity",
        "urgency": "Urgency",
        "certainty": "Certainty",
        "area": "Area",
        "description": "Description",
        "instruction": "What to do",
        "sender": "Issuer",
        "sent": "Issued",
        "expires": "Expires",
        "more": "More information",
        "contact": "Contact",
        "cap": "CAP document",
        "other": "Español",
    },
}
_BANNERS = {
    Status.EXERCISE: "exercise",
    Status.TEST: "test",
    Status.SYSTEM: "system",
    Status.DRAFT: "draft",
}


def page_language(request: web.Request) -> str:
    """``es`` or ``en``: ``?lang=`` first, then the best of ``Accept-Language``, else ``es``."""
    asked = request.query.get("lang", "").lower().split("-")[0]
    if asked in _LANGUAGES:
        return asked
    candidates: list[tuple[float, int, str]] = []
    for position, item in enumerate(request.headers.get("Accept-Language", "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in _LANGUAGES:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            candidates.append((quality, -position, primary))
    return max(candidates)[2] if candidates else "es"


def _safe_link(url: str | None) -> str | None:
    """Only http(s) links become links: a ``javascript:`` URL from a feed stays text."""
    if not url:
        return None
    return url if urlsplit(url.strip()).scheme.lower() in ("http", "https") else None


def _state_notice(item: Published, now: datetime) -> str | None:
    state = item.stored.state
    if state is AlertState.CANCELLED:
        return "cancelled"
    if state is AlertState.SUPERSEDED:
        return "superseded"
    if state is AlertState.WITHDRAWN:
        return "withdrawn"
    expires = item.stored.alert.expires
    if state is AlertState.EXPIRED or (expires is not None and expires <= now):
        return "expired"
    return None


def _when(value: datetime | None) -> str | None:
    return format_cap_datetime(value) if value is not None else None


def page_context(item: Published, language: str, now: datetime) -> dict[str, Any]:
    """Everything the template shows; plain values, escaped by the template engine."""
    alert: Alert = item.stored.alert
    info = alert.info_for(language)
    labels = _LABELS[language]
    other = "en" if language == "es" else "es"
    banner = _BANNERS.get(alert.status)
    return {
        "lang": language,
        "labels": labels,
        "alert_id": item.stored.id,
        "banner": labels[banner] if banner else None,
        "state_notice": labels[n] if (n := _state_notice(item, now)) else None,
        "msg_type": alert.msg_type.value,
        "sender": (info.sender_name if info and info.sender_name else alert.sender),
        "sent": _when(alert.sent),
        "expires": _when(alert.expires),
        "headline": (info.headline or info.event) if info else alert.identifier,
        "event": info.event if info else None,
        "severity": info.severity.value if info else None,
        "urgency": info.urgency.value if info else None,
        "certainty": info.certainty.value if info else None,
        "areas": [area.area_desc for area in info.areas] if info else [],
        "description": info.description if info else None,
        "instruction": info.instruction if info else None,
        "contact": info.contact if info else None,
        "web": _safe_link(info.web if info else None),
        "info_language": info.language if info else language,
        "other_lang": other,
        "other_label": labels["other"],
        "cap_path": f"/cap/{item.stored.id}.xml",
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


# --------------------------------------------------------------------------- routes


class PublicFeed:
    """The handlers, with the database they read and the service's public URL."""

    def __init__(self, engine: AsyncEngine, site_url: str, *, index_limit: int = INDEX_LIMIT):
        self.engine = engine
        self.site_url = site_url.rstrip("/")
        self.index_limit = index_limit
        self._templates = _environment()

    async def cap_document(self, request: web.Request) -> web.Response:
        alert_id = _alert_id(request.match_info["alert_id"])
        item = await self._published(alert_id)
        try:
            body = to_cap_xml(item.stored.alert)
        except ValueError as exc:  # the model holds something CAP 1.2 cannot carry
            log.error("public.cap_unwritable", alert_id=item.stored.id, reason=str(exc))
            raise web.HTTPInternalServerError(text="this alert cannot be written as CAP") from exc
        return cached_response(request, body, f"{CAP_MEDIA_TYPE}; charset=utf-8", item.published_at)

    async def index(self, request: web.Request) -> web.Response:
        try:
            items = await latest_published(self.engine, self.index_limit)
        except StoreError as exc:
            raise _unavailable(exc) from exc
        body = atom_index(items, self.site_url)
        last = max((i.published_at for i in items), default=datetime(1970, 1, 1, tzinfo=UTC))
        return cached_response(request, body, f"{ATOM_MEDIA_TYPE}; charset=utf-8", last)

    async def page(self, request: web.Request) -> web.Response:
        alert_id = _alert_id(request.match_info["alert_id"])
        item = await self._published(alert_id)
        language = page_language(request)
        context = page_context(item, language, datetime.now(UTC))
        text = self._templates.get_template("alert.html.j2").render(**context)
        response = web.Response(text=text, content_type="text/html", charset="utf-8")
        response.headers["Content-Language"] = language
        response.headers["Vary"] = "Accept-Language"
        response.headers["Cache-Control"] = CACHE_CONTROL
        return response

    async def _published(self, alert_id: int | None) -> Published:
        item = None
        if alert_id is not None:
            try:
                item = await published_alert(self.engine, alert_id)
            except StoreError as exc:
                raise _unavailable(exc) from exc
        if item is None:
            raise web.HTTPNotFound(text="no such alert")
        return item


def _unavailable(exc: StoreError) -> web.HTTPServiceUnavailable:
    log.error("public.read_failed", reason=str(exc))
    return web.HTTPServiceUnavailable(text="try again shortly", headers={"Retry-After": "5"})


def add_public_routes(app: web.Application, engine: AsyncEngine, site_url: str) -> PublicFeed:
    """Register ``/cap/index.atom``, ``/cap/{id}.xml`` and ``/alerts/{id}``; return the handlers."""
    feed = PublicFeed(engine, site_url)
    app.router.add_get("/cap/index.atom", feed.index)
    app.router.add_get(r"/cap/{alert_id:[^/]+}.xml", feed.cap_document)
    app.router.add_get("/alerts/{alert_id}", feed.page)
    return feed
