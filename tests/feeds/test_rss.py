"""The ``rss`` kind: news items (health bulletins, recalls) become alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alertcast.config import FeedConfig
from alertcast.domain import Category, Certainty, MsgType, Severity, Status, Urgency
from alertcast.errors import FeedError
from alertcast.feeds.base import FeedBatch
from alertcast.feeds.rss import RssParser, html_to_text, stable_identifier

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
BULLETINS = FIXTURES / "boletines_salud.rss"


def feed(url: str | None = "https://salud.example.mx/rss.xml", **mapping: Any) -> FeedConfig:
    return FeedConfig(name="salud", kind="rss", file=Path("salud.toml"), url=url, mapping=mapping)


def parse(data: bytes | str, config: FeedConfig | None = None) -> FeedBatch:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return RssParser().parse(raw, config or feed())


def rss(*items: str, channel: str = "<title>Salud</title>") -> str:
    return f'<rss version="2.0"><channel>{channel}{"".join(items)}</channel></rss>'


def item(guid: str = "G-1", date: str = "Mon, 19 Jan 2026 10:30:00 -0600", **extra: str) -> str:
    parts = [f"<guid>{guid}</guid>" if guid else "", f"<pubDate>{date}</pubDate>" if date else ""]
    parts.append(f"<title>{extra.get('title', 'Aviso')}</title>")
    parts += [f"<{k}>{v}</{k}>" for k, v in extra.items() if k != "title"]
    return "<item>" + "".join(parts) + "</item>"


# --------------------------------------------------------------------------- the fixture


def test_bulletins_become_health_alerts() -> None:
    batch = parse(BULLETINS.read_bytes())
    first = batch.items[0]
    assert first.alert.identifier == "SSA-2026-014"
    alert = first.alert
    assert alert.sender == "salud.example.mx"
    assert alert.sent == datetime(2026, 1, 19, 16, 30, tzinfo=UTC)
    assert (alert.status, alert.msg_type, alert.scope.value) == (
        Status.ACTUAL,
        MsgType.ALERT,
        "Public",
    )
    info = alert.infos[0]
    assert info.categories == (Category.HEALTH,)
    assert info.event == info.headline == "Alerta sanitaria por dengue en Veracruz"
    assert info.language == "es-MX"
    assert (info.urgency, info.severity, info.certainty) == (
        Urgency.UNKNOWN,
        Severity.MINOR,
        Certainty.UNKNOWN,
    )
    assert info.description == (
        "La Secretaría de Salud emite una alerta por dengue.\n"
        "Elimine criaderos de mosquitos & use repelente."
    )
    assert info.web == "https://salud.example.mx/comunicados/2026-014"
    assert info.sender_name == "Comunicados de Salud (ejemplo)"
    assert info.expires is None and info.areas == ()
    assert first.thread == "SSA-2026-014"
    assert b"SSA-2026-014" in first.raw


def test_bad_items_are_errors_and_the_others_still_count() -> None:
    batch = parse(BULLETINS.read_bytes())
    assert len(batch.items) == 2
    assert batch.errors[0].startswith("entry 3: no publication or update time")
    assert batch.errors[1].startswith("entry 4: no guid and no link")
    assert batch.warnings == ("entry 5 repeats entry 1; read once",)
    assert batch.listed == tuple(str(i.alert.key) for i in batch.items)
    assert batch.complete is False


def test_a_guid_cap_forbids_becomes_a_stable_hash() -> None:
    first = parse(BULLETINS.read_bytes()).items[1]
    again = parse(BULLETINS.read_bytes()).items[1]
    assert first.alert.identifier == again.alert.identifier
    assert first.alert.identifier.startswith("rss-") and len(first.alert.identifier) == 36
    assert "hash" in first.warnings[0]
    assert first.alert.infos[0].web == "https://salud.example.mx/comunicados/2026-015?a=1&b=2"


@pytest.mark.parametrize(
    ("value", "hashed"),
    [
        ("SSA-2026-014", False),
        ("https://salud.example.mx/c/1", False),
        ("has space", True),
        ("a,b", True),
        ("a&b", True),
        ("x" * 255, False),
        ("x" * 256, True),
    ],
)
def test_stable_identifier(value: str, hashed: bool) -> None:
    identifier, was_hashed = stable_identifier(value)
    assert was_hashed is hashed
    assert (identifier == value) is not hashed


def test_the_identifier_does_not_depend_on_which_feedparser_parser_ran() -> None:
    guid = "http://x.example/a?b=1&amp;c=2"
    well_formed = parse(rss(item(guid=guid)))
    broken = parse(rss(item(guid=guid, description="Bob Evans&reg;")))
    assert broken.warnings and "not well-formed" in broken.warnings[0]
    assert well_formed.items[0].alert.identifier == broken.items[0].alert.identifier


def test_link_is_the_identifier_without_a_guid_and_updated_is_sent_without_published() -> None:
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>Boletines</title>'
        '<entry><title>Vacunación</title><link href="https://salud.example.mx/v"/>'
        "<updated>2026-01-19T09:00:00-06:00</updated>"
        '<summary type="html">&lt;b&gt;Campaña&lt;/b&gt; de vacunación</summary></entry></feed>'
    )
    alert = parse(atom).items[0].alert
    # feedparser makes the link the id of an Atom entry without one.
    assert alert.identifier == "https://salud.example.mx/v"
    assert alert.sent == datetime(2026, 1, 19, 15, 0, tzinfo=UTC)
    assert alert.infos[0].description == "Campaña de vacunación"


# --------------------------------------------------------------------------- mapping


def test_mapping_overrides_the_defaults() -> None:
    config = feed(
        sender="ssa.gob.mx",
        sender_name="Secretaría de Salud",
        category="Safety",
        language="es-US",
        event="Comunicado",
        urgency="Expected",
        severity="Moderate",
        certainty="Likely",
        status="Test",
        area_desc="Veracruz",
        expires_hours=48,
    )
    alert = parse(BULLETINS.read_bytes(), config).items[0].alert
    info = alert.infos[0]
    assert (alert.sender, alert.status) == ("ssa.gob.mx", Status.TEST)
    assert (info.event, info.headline) == ("Comunicado", "Alerta sanitaria por dengue en Veracruz")
    assert (info.categories, info.language, info.sender_name) == (
        (Category.SAFETY,),
        "es-US",
        "Secretaría de Salud",
    )
    assert (info.urgency, info.severity, info.certainty) == (
        Urgency.EXPECTED,
        Severity.MODERATE,
        Certainty.LIKELY,
    )
    assert info.areas[0].area_desc == "Veracruz"
    assert info.expires == alert.sent + timedelta(hours=48)


@pytest.mark.parametrize(
    ("mapping", "key"),
    [
        ({"sender": "Secretaría de Salud"}, "mapping.sender"),
        ({"category": "Salud"}, "mapping.category"),
        ({"severity": 3}, "mapping.severity"),
        ({"language": "español"}, "mapping.language"),
        ({"expires_hours": 0}, "mapping.expires_hours"),
        ({"expires_hours": True}, "mapping.expires_hours"),
        ({"strict": "yes"}, "mapping.strict"),
        ({"event": ""}, "mapping.event"),
    ],
)
def test_bad_mapping_is_a_feed_error_naming_the_key(mapping: dict[str, Any], key: str) -> None:
    with pytest.raises(FeedError, match=key.replace(".", r"\.")):
        parse(BULLETINS.read_bytes(), feed(**mapping))


def test_defaults_without_a_url_or_a_language() -> None:
    batch = parse(rss(item()), feed(url=None))
    alert = batch.items[0].alert
    assert alert.sender == "salud"  # the feed's name: no URL, no channel link
    assert alert.infos[0].language == "es-MX"
    with_link = parse(rss(item(), channel="<link>https://www.ssa.gob.mx/</link>"), feed(url=None))
    assert with_link.items[0].alert.sender == "www.ssa.gob.mx"


def test_an_item_without_title_needs_a_configured_event() -> None:
    no_title = rss("<item><guid>g</guid><pubDate>Mon, 19 Jan 2026 10:30:00 -0600</pubDate></item>")
    assert parse(no_title).errors[0].startswith("entry 1: no title")
    assert parse(no_title, feed(event="Boletín")).items[0].alert.infos[0].event == "Boletín"


# --------------------------------------------------------------------------- bad documents


def test_a_bozo_feed_with_items_is_read_with_a_warning_or_refused_when_strict() -> None:
    data = rss(item(description="Bob Evans&reg; Maple"))
    batch = parse(data)
    assert batch.items[0].alert.infos[0].description == "Bob Evans® Maple"
    assert batch.warnings[0].startswith("the feed is not well-formed (")
    with pytest.raises(FeedError, match="not well-formed"):
        parse(data, feed(strict=True))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<html><body><p>Mantenimiento</p></body></html>",
        b'{"items": []}',
        b"\x00\x01\x02 not a feed",
    ],
)
def test_documents_without_any_feed_are_refused(data: bytes) -> None:
    with pytest.raises(FeedError) as caught:
        parse(data)
    assert caught.value.feed == "salud"


def test_a_well_formed_feed_with_no_items_is_an_empty_batch() -> None:
    batch = parse(rss())
    assert (batch.items, batch.errors) == ((), ())


def test_entity_declarations_are_refused_before_feedparser(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    data = f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "{secret.as_uri()}">]>' + rss(
        item(description="&x;")
    )
    with pytest.raises(FeedError, match="entities") as caught:
        parse(data)
    assert "TOP-SECRET-VALUE" not in str(caught.value)
    utf16 = data.encode("utf-16")
    with pytest.raises(FeedError, match="entities"):
        parse(utf16)


def test_bytes_that_name_a_file_are_never_opened(tmp_path: Path) -> None:
    local = tmp_path / "feed.xml"
    local.write_text(rss(item()), encoding="utf-8")
    with pytest.raises(FeedError):
        parse(str(local).encode())  # feedparser would open a *string* path; bytes stay data


def test_the_size_limit_applies() -> None:
    config = FeedConfig(name="salud", kind="rss", file=Path("s.toml"), max_bytes=100)
    with pytest.raises(FeedError, match="more than the limit"):
        parse(BULLETINS.read_bytes(), config)


# --------------------------------------------------------------------------- HTML to text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Uno</p><p>Dos</p>", "\nUno\n\nDos\n"),
        ("a<br>b", "a\nb"),
        ("<script>alert(1)</script>ok<style>p{}</style>", "ok"),
        ("&amp; &lt;b&gt; &eacute; &#233;", "& <b> é é"),
        ("<a href='x'>enlace</a> y <em>más</em>", "enlace y más"),
        ("sin etiquetas", "sin etiquetas"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text
