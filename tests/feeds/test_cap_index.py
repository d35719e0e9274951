"""The ``cap-index`` kind: embedded and linked CAP, index fields, link safety, completeness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from alertcast.config import FeedConfig
from alertcast.domain import MsgType, NamedValue, Status
from alertcast.errors import FeedError
from alertcast.feeds.base import FeedBatch
from alertcast.feeds.cap_index import CapIndexParser, IndexedLink
from alertcast.feeds.cap_single import CapParser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
MIXED = FIXTURES / "index_mixed.atom"
CST = timezone(timedelta(hours=-6))

ATOM_HEAD = '<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:x</id><title>t</title>'
CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"


def feed(
    url: str | None = "https://alertas.example.mx/cap/index.atom", **options: Any
) -> FeedConfig:
    mapping = options.pop("mapping", {})
    return FeedConfig(
        name="avisos",
        kind="cap-index",
        file=Path("avisos.toml"),
        url=url,
        mapping=mapping,
        **options,
    )


def parse(data: bytes | str, config: FeedConfig | None = None) -> FeedBatch:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return CapIndexParser().parse(raw, config or feed())


def cap_alert(identifier: str = "X-1", *, info: bool = True, extra: str = "") -> str:
    body = (
        "<info><category>Safety</category><event>Prueba</event><urgency>Expected</urgency>"
        "<severity>Minor</severity><certainty>Likely</certainty></info>"
        if info
        else ""
    )
    return (
        f'<alert xmlns="{CAP12}"><identifier>{identifier}</identifier>'
        "<sender>pc@example.mx</sender><sent>2026-01-19T11:00:00-06:00</sent>"
        f"<status>Actual</status><msgType>Alert</msgType><scope>Public</scope>{extra}{body}</alert>"
    )


def entry_with(alert: str) -> str:
    return (
        f'<entry><id>urn:e</id><title>x</title><content type="text/xml">{alert}</content></entry>'
    )


# --------------------------------------------------------------------------- the mixed fixture


def test_one_bad_entry_never_hides_the_good_ones() -> None:
    batch = parse(MIXED.read_bytes())
    assert [item.alert.identifier for item in batch.items] == ["PC-0001"]
    assert [link.url for link in batch.links] == ["https://alertas.example.mx/cap/PC-0003.xml"]
    assert len(batch.errors) == 4
    assert batch.errors[0].startswith("entry 2: the embedded CAP cannot be read:")
    assert "identifier" in batch.errors[0]
    assert batch.errors[1].startswith("entry 4: ") and "'file:'" in batch.errors[1]
    assert batch.errors[2].startswith("entry 5: ") and "169.254.169.254" in batch.errors[2]
    assert "allowed_hosts" in batch.errors[2]
    assert batch.errors[3] == "entry 6: no CAP alert is embedded and no link points at one"


def test_embedded_alert_fields() -> None:
    item = parse(MIXED.read_bytes()).items[0]
    alert = item.alert
    assert (alert.identifier, alert.sender) == ("PC-0001", "proteccion.civil@example.mx")
    assert alert.sent == datetime(2026, 1, 19, 11, 0, tzinfo=CST)
    assert (alert.status, alert.msg_type) == (Status.EXERCISE, MsgType.ALERT)
    assert alert.languages() == ("es-MX", "en-US")
    assert alert.infos[0].areas[0].circles[0].radius_km == 30.0
    assert item.cap_version == "1.2"
    assert item.raw.startswith(b"<alert") and b"PC-0001" in item.raw


def test_linked_entry_resolves_relative_links_and_carries_index_hints() -> None:
    link = parse(MIXED.read_bytes()).links[0]
    assert isinstance(link, IndexedLink)
    assert link.entry_id == "tag:alertas.example.mx,2026:PC-0003"
    assert link.updated == datetime(2026, 1, 19, 11, 6, tzinfo=CST)
    hints = link.hints
    assert hints is not None
    assert hints.identifier == "PC-0003"
    assert hints.sent == datetime(2026, 1, 19, 11, 6, tzinfo=CST)
    assert hints.expires == datetime(2026, 1, 20, 11, 6, tzinfo=CST)
    assert hints.msg_type is MsgType.UPDATE  # MeteoAlarm's cap:message_type
    assert hints.get("event") == "Lluvias fuertes"
    assert NamedValue("geocode.INEGI", "30") in hints.fields


def test_listed_holds_alert_keys_and_each_linked_url_once() -> None:
    batch = parse(MIXED.read_bytes())
    assert batch.listed == (
        str(batch.items[0].alert.key),
        "https://alertas.example.mx/cap/PC-0003.xml",
    )
    assert batch.complete is False


# --------------------------------------------------------------------------- link safety


@pytest.mark.parametrize(
    "href",
    [
        "file:///etc/passwd",
        "ftp://alertas.example.mx/cap/x.xml",
        "javascript:alert(1)",
        "data:application/cap+xml;base64,PGFsZXJ0Lz4=",
        "https://user:secret@alertas.example.mx/cap/x.xml",
    ],
)
def test_links_that_could_reach_anything_else_are_refused(href: str) -> None:
    data = (
        f"{ATOM_HEAD}<entry><id>urn:e1</id><title>x</title>"
        f'<link type="application/cap+xml" href="{href}"/></entry></feed>'
    )
    for config in (feed(), feed(url=None)):
        batch = parse(data, config)
        assert batch.links == ()
        assert len(batch.errors) == 1 and batch.errors[0].startswith("entry 1: ")


def test_other_hosts_need_allowed_hosts() -> None:
    data = (
        f"{ATOM_HEAD}<entry><id>urn:e1</id><title>x</title>"
        '<link type="application/cap+xml" href="https://cap.other.example.org/a.xml"/></entry>'
        "</feed>"
    )
    refused = parse(data)
    assert refused.links == () and "cap.other.example.org" in refused.errors[0]
    allowed = parse(data, feed(allowed_hosts=("*.other.example.org",)))
    assert [link.url for link in allowed.links] == ["https://cap.other.example.org/a.xml"]
    exact = parse(data, feed(allowed_hosts=("cap.other.example.org",)))
    assert len(exact.links) == 1


def test_a_file_feed_follows_only_allowed_hosts() -> None:
    data = (
        f"{ATOM_HEAD}<entry><id>https://alertas.example.mx/cap/1.xml</id><title>x</title></entry>"
        "</feed>"
    )
    assert parse(data, feed(url="file:///srv/feeds/index.atom")).links == ()
    allowed = parse(
        data, feed(url="file:///srv/feeds/index.atom", allowed_hosts=("alertas.example.mx",))
    )
    assert [link.url for link in allowed.links] == ["https://alertas.example.mx/cap/1.xml"]


def test_without_a_feed_url_links_are_listed_but_relative_ones_cannot_be() -> None:
    data = (
        f"{ATOM_HEAD}<entry><id>urn:e1</id><title>x</title>"
        '<link type="application/cap+xml" href="https://anywhere.example.net/a.xml"/></entry>'
        '<entry><id>urn:e2</id><title>y</title><link type="application/cap+xml" href="b.xml"/>'
        "</entry></feed>"
    )
    batch = parse(data, feed(url=None))
    assert [link.url for link in batch.links] == ["https://anywhere.example.net/a.xml"]
    assert batch.errors == (
        "entry 2: link 'b.xml' is relative and the feed has no URL to resolve it",
    )


def test_xml_base_resolves_links_but_cannot_escape_the_host_rule() -> None:
    data = (
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://alertas.example.mx/x/">'
        "<id>urn:x</id><title>t</title><entry><id>urn:e1</id><title>x</title>"
        '<link type="application/cap+xml" href="a.xml"/></entry>'
        '<entry xml:base="https://evil.example.net/"><id>urn:e2</id><title>y</title>'
        '<link type="application/cap+xml" href="b.xml"/></entry></feed>'
    )
    batch = parse(data)
    assert [link.url for link in batch.links] == ["https://alertas.example.mx/x/a.xml"]
    assert len(batch.errors) == 1 and "evil.example.net" in batch.errors[0]


def test_xxe_in_an_index_is_refused_without_reading_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    data = (
        f'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
        f"{ATOM_HEAD}<entry><id>urn:e1</id><title>&xxe;</title>"
        f'<content type="text/xml">{cap_alert()}</content></entry></feed>'
    )
    with pytest.raises(FeedError) as caught:
        parse(data)
    assert "entities" in caught.value.reason
    assert "TOP-SECRET-VALUE" not in str(caught.value)


def test_external_dtd_and_xinclude_are_never_loaded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_text("<x>TOP-SECRET-VALUE</x>", encoding="utf-8")
    dtd = tmp_path / "feed.dtd"
    dtd.write_text('<!ATTLIST feed leaked CDATA "TOP-SECRET-VALUE">', encoding="utf-8")
    data = (
        f'<?xml version="1.0"?><!DOCTYPE feed SYSTEM "{dtd.as_uri()}">'
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:xi="http://www.w3.org/2001/XInclude">'
        f'<id>urn:x</id><title>t</title><xi:include href="{secret.as_uri()}" parse="text"/>'
        f'<entry><id>urn:e1</id><title>x</title><content type="text/xml">'
        f"{cap_alert(extra=f'<note><xi:include href={chr(34)}{secret.as_uri()}{chr(34)}/></note>')}"
        "</content></entry></feed>"
    )
    batch = parse(data)
    assert len(batch.items) == 1
    assert "TOP-SECRET-VALUE" not in repr(batch)
    assert any("document type declaration" in w for w in batch.warnings)


# --------------------------------------------------------------------------- embedded forms


def test_cap_as_a_child_of_an_rss_item_and_escaped_in_content() -> None:
    escaped = cap_alert("ESC-1").replace("&", "&amp;").replace("<", "&lt;")
    data = (
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>t</title><item><guid>a</guid>{cap_alert('RSS-1')}</item>"
        f"<item><guid>b</guid><content:encoded>{escaped}</content:encoded></item>"
        "</channel></rss>"
    )
    batch = parse(data)
    assert [item.alert.identifier for item in batch.items] == ["RSS-1", "ESC-1"]
    assert batch.errors == ()


def test_a_fragment_alert_without_info_follows_the_link() -> None:
    data = (
        f"{ATOM_HEAD}<entry><id>https://alertas.example.mx/cap/1.xml</id><title>x</title>"
        f"{cap_alert('!', info=False)}</entry></feed>"
    )
    batch = parse(data)
    assert batch.items == ()
    assert [link.url for link in batch.links] == ["https://alertas.example.mx/cap/1.xml"]
    assert "fragment" in batch.warnings[0] and "link is followed" in batch.warnings[0]


def test_an_embedded_cancel_without_info_is_an_alert() -> None:
    cancel = cap_alert("C-1", info=False).replace(
        "<msgType>Alert</msgType>", "<msgType>Cancel</msgType>"
    )
    batch = parse(f"{ATOM_HEAD}<entry><id>urn:e</id><title>x</title>{cancel}</entry></feed>")
    assert [item.alert.msg_type for item in batch.items] == [MsgType.CANCEL]


def test_unreadable_embedded_cap_with_a_link_falls_back_with_a_warning() -> None:
    broken = cap_alert().replace("<sent>2026-01-19T11:00:00-06:00</sent>", "")
    data = (
        f'{ATOM_HEAD}<entry><id>urn:e</id><title>x</title><content type="text/xml">{broken}'
        '</content><link href="https://alertas.example.mx/cap/e.xml"/></entry></feed>'
    )
    batch = parse(data)
    assert [link.url for link in batch.links] == ["https://alertas.example.mx/cap/e.xml"]
    assert batch.errors == ()
    assert batch.warnings[0].startswith("entry 1: the embedded CAP cannot be read:")


def test_strict_mapping_refuses_embedded_cap_with_warnings() -> None:
    lax = cap_alert().replace("<scope>Public</scope>", "<scope>public</scope>")
    data = f"{ATOM_HEAD}{entry_with(lax)}</feed>"
    assert len(parse(data).items) == 1
    strict = parse(data, feed(mapping={"strict": True}))
    assert strict.items == () and len(strict.errors) == 1


def test_the_same_embedded_alert_in_two_entries_is_one_item() -> None:
    entry = entry_with(cap_alert())
    batch = parse(f"{ATOM_HEAD}{entry}{entry}</feed>")
    assert len(batch.items) == 1
    assert len(batch.listed) == 1


# --------------------------------------------------------------------------- completeness


NWS_GENERATOR = "<generator>NWS CAP Server</generator>"


def test_known_active_lists_are_complete_unless_configured_otherwise() -> None:
    data = f"{ATOM_HEAD}{NWS_GENERATOR}<entry><id>https://alertas.example.mx/1</id><title>x</title></entry></feed>"
    assert parse(data).complete is True
    assert parse(data, feed(mapping={"complete": False})).complete is False
    plain = data.replace(NWS_GENERATOR, "")
    assert parse(plain).complete is False
    assert parse(plain, feed(mapping={"complete": True})).complete is True


def test_an_empty_active_list_is_complete_and_lists_nothing() -> None:
    batch = parse(f"{ATOM_HEAD}{NWS_GENERATOR}</feed>")
    assert (batch.complete, batch.listed, batch.items, batch.links) == (True, (), (), ())
    assert batch.warnings == ("the index has no entries",)


def test_a_batch_with_entry_errors_is_never_complete() -> None:
    data = (
        f"{ATOM_HEAD}{NWS_GENERATOR}<entry><id>https://alertas.example.mx/1</id><title>x</title>"
        "</entry><entry><id>urn:nolink</id><title>y</title></entry></feed>"
    )
    batch = parse(data, feed(mapping={"complete": True}))
    assert batch.complete is False
    assert any("not taken as the complete list" in w for w in batch.warnings)


@pytest.mark.parametrize("setting", ["yes", 1])
def test_bad_mapping_values_are_feed_errors(setting: object) -> None:
    with pytest.raises(FeedError, match=r"mapping\.complete"):
        parse(f"{ATOM_HEAD}</feed>", feed(mapping={"complete": setting}))


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (cap_alert(), "use kind = 'cap'"),
        ("<html><body>Service unavailable</body></html>", "root element is <html>"),
        ('<rss version="2.0"></rss>', "no <channel>"),
        ("<feed><entry>", "truncated"),
        ("<feed><a></b></feed>", "not well-formed"),
        ("", "empty"),
        ('{"events": []}', "not an api.weather.gov alert collection"),
        ("[1, 2", "not valid JSON"),
    ],
)
def test_documents_that_are_not_indexes_are_refused_clearly(data: str, reason: str) -> None:
    with pytest.raises(FeedError) as caught:
        parse(data)
    assert reason in caught.value.reason
    assert caught.value.feed == "avisos"


def test_the_size_limit_applies_before_parsing() -> None:
    data = f"{ATOM_HEAD}{' ' * 2048}</feed>"
    with pytest.raises(FeedError, match="more than the limit"):
        parse(data, feed(max_bytes=1024))


def test_invalid_utf8_is_read_leniently_with_a_warning() -> None:
    data = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"{ATOM_HEAD}<entry><id>https://alertas.example.mx/1</id><title>m\xe9t\xe9o</title>"
        "</entry></feed>"
    ).encode("latin-1")
    batch = parse(data)
    assert len(batch.links) == 1
    assert "not valid UTF-8" in batch.warnings[0]


# --------------------------------------------------------------------------- GeoJSON


def test_nws_geojson_features_become_alerts() -> None:
    batch = parse((FIXTURES / "nws_active_small.geojson").read_bytes(), feed(url=None))
    assert len(batch.items) == 1
    assert batch.errors == ("entry 2: sent: required but missing",)
    alert = batch.items[0].alert
    assert alert.identifier == "urn:oid:2.49.0.1.840.0.aaa.001.1"
    assert alert.sender == "w-nws.webmaster@noaa.gov"
    assert alert.sent == datetime(2026, 1, 19, 10, 55, tzinfo=CST)
    info = alert.infos[0]
    assert (info.event, info.severity.value, info.response_types[0].value) == (
        "Tornado Warning",
        "Extreme",
        "Shelter",
    )
    assert info.expires == datetime(2026, 1, 19, 18, 0, tzinfo=UTC)
    assert info.parameter("eventEndingTime") == "2026-01-19T13:00:00-06:00"
    assert NamedValue("SAME", "TOR") in info.event_codes
    area = info.areas[0]
    assert area.area_desc == "Travis, TX"
    assert area.polygons[0].points[0] == (30.1, -97.5)  # GeoJSON lon,lat → CAP lat,lon
    assert [g.name for g in area.geocodes] == ["SAME", "UGC"]
    # An error means the list may be incomplete: nothing may be taken for withdrawn.
    assert batch.complete is False


def test_nws_geojson_active_collection_is_complete() -> None:
    data = (FIXTURES / "nws_active_small.geojson").read_text(encoding="utf-8")
    good_only = data[: data.index(',\n    {\n      "id": "https://api.weather.gov/alerts/broken"')]
    batch = parse(good_only + "\n  ]\n}\n")
    assert batch.errors == () and batch.complete is True
    assert batch.listed == (str(batch.items[0].alert.key),)


# --------------------------------------------------------------------------- kind cap


def test_kind_cap_reads_one_document_and_refuses_unreadable_ones() -> None:
    config = FeedConfig(name="uno", kind="cap", file=Path("uno.toml"))
    batch = CapParser().parse(cap_alert("ONE").encode(), config)
    assert [item.alert.identifier for item in batch.items] == ["ONE"]
    assert batch.listed == (str(batch.items[0].alert.key),)
    assert batch.complete is False
    with pytest.raises(FeedError) as caught:
        CapParser().parse(b"<alert>", config)
    assert caught.value.feed == "uno"
