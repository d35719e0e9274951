"""Every public index and health bulletin in the corpus: its fields, or its clear refusal.

Each file in ``index/`` and ``health/`` has exactly one check below (registered
with ``@check``); ``test_every_file_has_a_check`` fails when a file is added
to the corpus without one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from alertcast.config import FeedConfig
from alertcast.domain import Alert, MsgType, NamedValue
from alertcast.errors import FeedError
from alertcast.feeds.base import FeedBatch
from alertcast.feeds.cap_index import CapIndexParser, IndexedLink
from alertcast.feeds.registry import detect_kind
from alertcast.feeds.rss import RssParser
from tests.conftest import corpus_files

pytestmark = pytest.mark.corpus

Check = Callable[[Path], None]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        assert name not in CHECKS, f"two checks for {name}"
        CHECKS[name] = function
        return function

    return register


def index(path: Path, url: str | None = None, **options: Any) -> FeedBatch:
    assert detect_kind(path.read_bytes()) == "cap-index"
    config = FeedConfig(
        name=path.name, kind="cap-index", file=path, url=url, max_bytes=2_000_000, **options
    )
    return CapIndexParser().parse(path.read_bytes(), config)


def bulletins(path: Path) -> FeedBatch:
    assert detect_kind(path.read_bytes()) == "rss"
    config = FeedConfig(name=path.name, kind="rss", file=path)
    return RssParser().parse(path.read_bytes(), config)


def summary(alert: Alert) -> dict[str, Any]:
    """The fields every corpus check compares."""
    kinds: set[str] = set()
    for info in alert.infos:
        for area in info.areas:
            kinds |= {"polygon"} if area.polygons else set()
            kinds |= {"circle"} if area.circles else set()
            kinds |= {"geocode"} if area.geocodes else set()
    return {
        "identifier": alert.identifier,
        "sender": alert.sender,
        "sent": alert.sent.isoformat(),
        "status": alert.status.value,
        "msg_type": alert.msg_type.value,
        "infos": len(alert.infos),
        "languages": alert.languages(),
        "area_types": sorted(kinds),
        "references": [str(ref) for ref in alert.references],
    }


def only_links(batch: FeedBatch, count: int) -> list[IndexedLink]:
    assert batch.items == ()
    assert batch.errors == ()
    assert len(batch.links) == count
    assert batch.listed == tuple(link.url for link in batch.links)
    links = [link for link in batch.links if isinstance(link, IndexedLink)]
    assert len(links) == count
    return links


@pytest.mark.parametrize(
    "path", corpus_files("index") + corpus_files("health"), ids=lambda p: p.name
)
def test_corpus_file(path: Path, corpus_dir: Path) -> None:
    assert path.name in CHECKS, f"{path.name} has no check in this module"
    CHECKS[path.name](path)


def test_every_file_has_a_check(corpus_dir: Path) -> None:
    present = {p.name for p in (corpus_dir / "index").iterdir()}
    present |= {p.name for p in (corpus_dir / "health").iterdir()}
    assert present == set(CHECKS)


# --------------------------------------------------------------------------- embedded CAP


@check("amber.atom")
def _amber_atom(path: Path) -> None:
    batch = index(path)  # atom:-prefixed Atom, CAP 1.1 inline in atom:content
    assert (batch.links, batch.errors, batch.complete) == ((), (), False)
    [item] = batch.items
    assert summary(item.alert) == {
        "identifier": "http://doj.dc.gov/amber12345",
        "sender": "KARO@CLETS.DOJ.DC.GOV",
        "sent": "2010-06-03T19:15:00-05:00",
        "status": "Actual",
        "msg_type": "Alert",
        "infos": 1,
        "languages": ("en-US",),
        "area_types": ["geocode"],
        "references": [],
    }
    assert item.cap_version == "1.1"
    assert item.alert.infos[0].event == "Child Abduction"
    assert batch.listed == (str(item.alert.key),)


@check("canada_signed.atom")
def _canada_signed(path: Path) -> None:
    batch = index(path)  # declares a cap 1.1 prefix, embeds a signed CAP 1.2
    [item] = batch.items
    got = summary(item.alert)
    assert got.pop("references")[0] == (
        "cap-pac@ec.gc.ca,2.49.0.1.124.726d2331.2013,2013-01-23T21:31:00+00:00"
    )
    assert len(item.alert.references) == 9
    assert got == {
        "identifier": "2.49.0.1.124.f2c83f5f.2013",
        "sender": "cap-pac@ec.gc.ca",
        "sent": "2013-01-24T21:26:00+00:00",
        "status": "Actual",
        "msg_type": "Update",
        "infos": 2,
        "languages": ("en-CA", "fr-CA"),
        "area_types": ["geocode", "polygon"],
    }
    assert item.cap_version == "1.2"
    assert batch.links == () and batch.errors == ()


SASMEX_POLYGON = ((17.52, -102.17), (19.34, -100.11), (20.5, -103.18), (19.07, -104.96))


@check("sasmex_alert_format.atom.xml")
def _sasmex_alert(path: Path) -> None:
    [item] = index(path, url="https://rss.sasmex.net/sasmex2.xml").items
    assert summary(item.alert) == {
        "identifier": "CIRES_20230911094414_842",  # not the entry id 20234129426
        "sender": "cires.org.mx",
        "sent": "2023-09-11T09:44:22-06:00",
        "status": "Actual",
        "msg_type": "Alert",
        "infos": 1,
        "languages": ("es-MX",),
        "area_types": ["polygon"],
        "references": [],
    }
    info = item.alert.infos[0]
    assert info.event == "SASMEX: ALERTA SISMICA en CDMX por sismo en PtoEscondido Oax"
    assert info.event_codes == (NamedValue("SAME", "EQW"),)
    assert info.areas[0].polygons[0].points[:4] == SASMEX_POLYGON
    assert item.cap_version == "1.1"


@check("sasmex_event_format.atom.xml")
def _sasmex_event(path: Path) -> None:
    [item] = index(path).items
    got = summary(item.alert)
    assert got["identifier"] == "CIRES_20230911094414_842"
    assert got["sent"] == "2023-09-11T09:44:14-06:00"
    assert (got["msg_type"], got["infos"], got["languages"]) == ("Alert", 1, ("es-MX",))
    assert got["area_types"] == ["circle"] and got["references"] == []
    info = item.alert.infos[0]
    assert (info.severity.value, info.response_types[0].value) == ("Unknown", "Monitor")
    circle = info.areas[0].circles[0]
    assert (circle.lat, circle.lon, circle.radius_km) == (19.05661, -104.224, 70.0)


@check("sasmex_update_format.atom.xml")
def _sasmex_update(path: Path) -> None:
    [item] = index(path).items
    assert summary(item.alert) == {
        "identifier": "20234129426",
        "sender": "sasmex.net",
        "sent": "2023-04-12T09:04:26-06:00",
        "status": "Actual",
        "msg_type": "Update",
        "infos": 1,
        "languages": ("es-MX",),
        "area_types": ["polygon"],
        "references": ["sasmex.net,20234129111,2023-04-12T09:04:25-06:00"],
    }
    assert item.alert.infos[0].parameter("Magnitude") == "6.1"


@check("weather_invalid.atom")
def _weather_invalid(path: Path) -> None:
    batch = index(path)  # negative sample: an identifier with a comma and a space
    [item] = batch.items
    got = summary(item.alert)
    assert got["identifier"] == "INVALID,"
    assert (got["sender"], got["sent"]) == ("w-nws.webmaster@noaa.gov", "2010-08-30T04:07:00-06:00")
    assert (got["msg_type"], got["infos"], got["area_types"]) == ("Alert", 1, [])
    assert any("/alert/identifier" in w and "forbids" in w for w in item.warnings)
    assert batch.complete is True  # the NWS CAP server's active list


# --------------------------------------------------------------------------- api.weather.gov


NWS = "w-nws.webmaster@noaa.gov"


@check("nws_api_alerts_active_zone.geojson")
def _nws_api_first(path: Path) -> None:
    batch = index(path, url="https://api.weather.gov/alerts/active/zone/ORZ004")
    assert batch.errors == () and batch.complete is True
    [item] = batch.items
    got = summary(item.alert)
    assert got.pop("references") == [
        f"{NWS},NWS-IDP-PROD-3964821-3368352,2019-12-19T12:52:00-08:00",
        f"{NWS},NWS-IDP-PROD-3965324-3368680,2019-12-20T01:47:00-08:00",
        f"{NWS},NWS-IDP-PROD-3965155-3368578,2019-12-19T21:23:00-08:00",
        f"{NWS},NWS-IDP-PROD-3963421-3367361,2019-12-18T12:29:00-08:00",
    ]
    assert got == {
        "identifier": "NWS-IDP-PROD-3965873-3369046",
        "sender": NWS,
        "sent": "2019-12-20T13:34:00-08:00",
        "status": "Actual",
        "msg_type": "Update",
        "infos": 1,
        "languages": ("en-US",),
        "area_types": ["geocode"],
    }
    info = item.alert.infos[0]
    geocodes = Counter(g.name for g in info.areas[0].geocodes)
    assert geocodes == {"UGC": 11, "SAME": 16}
    assert (info.event, info.severity.value, info.urgency.value) == (
        "Flood Watch",
        "Severe",
        "Future",
    )
    assert info.parameter("VTEC") == "/O.CON.KPQR.FA.A.0004.000000T0000Z-191222T1800Z/"
    assert info.instruction is not None and info.instruction.startswith("A Flood Watch means")


@check("nws_api_alerts_active_zone_second.geojson")
def _nws_api_second(path: Path) -> None:
    batch = index(path)
    assert [i.alert.identifier for i in batch.items] == [
        "NWS-IDP-PROD-3965873-3369046",
        "NWS-IDP-PROD-3965873-001",
    ]
    second = summary(batch.items[1].alert)
    assert second["references"][0] == f"{NWS},NWS-IDP-PROD-3964821-001,2019-12-19T12:52:00-08:00"
    assert (second["msg_type"], second["infos"], second["languages"]) == ("Update", 1, ("en-US",))
    assert batch.items[1].alert.infos[0].parameter("NWSheadline") == "Second Alert"
    assert batch.complete is True  # "current watches, warnings, and advisories"


# --------------------------------------------------------------------------- linked CAP


@check("alerthub_unfiltered_rss_2016.xml")
def _alerthub(path: Path) -> None:
    batch = index(path)
    links = only_links(batch, 1271)  # 1,272 items, one link listed twice
    assert (
        links[0].url == "https://alert-hub.s3.amazonaws.com/us-noaa-nws-en/2016-08-09-01-03-23-540"
    )
    assert links[0].entry_id.startswith("NOAA-NWS-ALERTS-NC12560DD03124.FlashFloodWarning")
    assert batch.complete is False
    # Most documents are served from another host than the index's: refused until the
    # operator allows that host; the 14 on the index's own host are kept.
    url = "https://s3.amazonaws.com/alert-feeds/unfiltered/rss.xml"
    refused = index(path, url=url)
    assert (len(refused.links), len(refused.errors)) == (14, 1258)
    assert all(link.url.startswith("https://s3.amazonaws.com/") for link in refused.links)
    assert "alert-hub.s3.amazonaws.com" in refused.errors[0]
    allowed = index(path, url=url, allowed_hosts=("alert-hub.s3.amazonaws.com",))
    assert len(allowed.links) == 1271 and allowed.errors == ()


@check("amber.rss")
def _amber_rss(path: Path) -> None:
    [link] = only_links(index(path), 1)
    assert link.url == "http://cap-validator.appspot.com/examples/KAR0-0306112239-SW.cap"
    assert link.entry_id == "KAR0-0306112239-SW"
    assert link.updated is not None and link.updated.isoformat() == "2003-06-11T22:39:00-07:00"


@check("earthquake_index.atom")
def _earthquake_index(path: Path) -> None:
    [link] = only_links(index(path), 1)  # CDATA summary; the CAP link is rel=related
    assert link.url == "http://earthquake.usgs.gov/earthquakes/catalogs/cap/us2010apcd"
    assert link.entry_id == "urn:earthquake-usgs-gov:us:2010apcd"


@check("usgs_alerthub.atom")
def _usgs(path: Path) -> None:
    batch = index(path, url="http://earthquake.usgs.gov/earthquakes/feed/atom/4.5/week")
    [link] = only_links(batch, 1)
    assert link.url == "http://earthquake.usgs.gov/earthquakes/eventpage/usb000qfgs.cap"
    assert link.entry_id == "urn:earthquake-usgs-gov:us:b000qfgs"


@check("empty_weather_index.atom")
def _empty_weather(path: Path) -> None:
    batch = index(path)
    assert (batch.items, batch.links, batch.listed) == ((), (), ())
    assert batch.complete is True  # NWS says: nothing is active
    assert batch.warnings == ("the index has no entries",)


@check("no_entries.atom")
def _no_entries(path: Path) -> None:
    batch = index(path)  # a CAP alert outside any entry is foreign markup
    assert (batch.items, batch.links, batch.errors, batch.complete) == ((), (), (), False)
    assert "a CAP alert outside any entry was ignored: only entries are read" in batch.warnings


@check("meteoalarm_legacy_atom_france.xml")
def _meteoalarm_france(path: Path) -> None:
    batch = index(path, url="https://feeds.meteoalarm.org/feeds/meteoalarm-legacy-atom-france")
    links = only_links(batch, 2)  # 12 entries, one per area, share 2 documents
    first = links[0]
    assert first.url == (
        "https://feeds.meteoalarm.org/api/v1/warnings/feeds-france/"
        "04d497d4-d114-4d6b-93ba-13fa7ed577fe"
    )
    assert first.entry_id.endswith("?index_info=1&index_area=5&index_geocode=0")
    assert first.hints is not None
    assert first.hints.identifier == "2.49.0.0.250.0.FR.20221207160058.764028"
    assert first.hints.msg_type is MsgType.ALERT  # from cap:message_type
    assert (
        first.hints.sent is not None and first.hints.sent.isoformat() == "2022-12-07T15:00:58+00:00"
    )
    assert first.hints.get("geocode.NUTS3") == "FR718"
    assert first.hints.get("areaDesc") == "Haute Savoie"
    assert batch.complete is True


@check("meteoalarm_legacy_atom_uk.xml")
def _meteoalarm_uk(path: Path) -> None:
    links = only_links(index(path), 4)  # 25 entries
    hints = links[0].hints
    assert hints is not None
    assert hints.identifier == "2.49.0.0.826.0.GB_221207102852_8785e37a.v3.0.SI"
    assert hints.msg_type is MsgType.UPDATE
    assert hints.get("geocode.EMMA_ID") == "UK105"


@check("meteoalarm_legacy_atom_ireland_huge.xml")
def _meteoalarm_ireland(path: Path) -> None:
    batch = index(path)  # 593 KB, 232 entries carrying 72 cap:polygon
    links = only_links(batch, 16)
    assert links[0].url.endswith("/feeds-ireland/558830a2-74a1-402a-915c-ab365ec68d25")
    assert links[0].hints is not None
    assert links[0].hints.identifier == "2.49.0.1.372.0.221206232741.M_LowTemp003"
    polygons = sum(
        1 for link in links if link.hints for f in link.hints.fields if f.name == "polygon"
    )
    assert polygons > 0
    assert batch.complete is True


@check("nws_alerts_us_atom_2017.xml")
def _nws_us_2017(path: Path) -> None:
    batch = index(path, url="https://alerts.weather.gov/cap/us.atom")
    links = only_links(batch, 215)
    assert links[0].url == (
        "https://alerts.weather.gov/cap/wwacapget.php?x=AK125867734B60.SpecialWeatherStatement"
        ".12586773BBE0AK.AFGSPSAFG.88fff69aab9bb2a74b526abf4c216ea1"
    )
    assert links[0].updated is not None
    assert links[0].updated.isoformat() == "2017-09-01T19:12:00-08:00"  # AKDT
    hints = links[0].hints
    assert hints is not None and hints.identifier is None  # NWS index entries have none
    assert hints.get("event") == "Special Weather Statement"
    assert hints.get("geocode.UGC") == "AKZ221 AKZ222 AKZ223 AKZ224"
    assert batch.complete is True


@check("us_nws_weather.atom")
def _us_nws_weather(path: Path) -> None:
    batch = index(path, url="http://alerts.weather.gov/cap/us.atom")
    links = only_links(batch, 2)
    assert "WindAdvisory" in links[0].url and "HighWindWarning" in links[1].url
    assert links[1].hints is not None and links[1].hints.get("severity") == "Severe"
    assert batch.complete is True


@check("weather_index.atom")
def _weather_index(path: Path) -> None:
    links = only_links(index(path), 2)
    assert links[0].url.endswith("x=CT20100831030400OKXAirQualityAlertOKX20100901031500CT")
    assert links[0].hints is not None and links[0].hints.expires is not None
    assert links[0].hints.expires.isoformat() == "2010-08-31T23:15:00-04:00"


@check("oregon_nws.atom")
def _oregon(path: Path) -> None:
    batch = index(path)  # an <alert> wrapping index fields: a fragment, the link is used
    [link] = batch.links
    assert link.url.startswith("http://alerts.weather.gov/cap/wwacapget.php?x=OR125153E5DB78.")
    assert batch.items == () and batch.errors == ()
    assert "fragment" in batch.warnings[0]
    assert batch.complete is True


@check("ny_index.rss")
def _ny(path: Path) -> None:
    links = only_links(index(path, url="http://www.nyalert.gov/rss.xml"), 2)
    assert links[0].url == (
        "http://www.nyalert.gov/Public/News/GetCapAlert.aspx?capID=NYAlert-ALLHAZALERT-3167113"
    )
    assert links[0].entry_id == "NYAlert-ALLHAZALERT-3167113"


@check("pelmorex.atom")
def _pelmorex(path: Path) -> None:
    batch = index(path)  # declares UTF-8, holds ISO-8859-1 bytes
    [link] = only_links(batch, 1)
    assert link.url == (
        "http://capcp2.naad-adna.pelmorex.com/2014-05-10/"
        "2014_05_10T02_17_00_00_00I2.49.0.1.124.41b6352f.2014.xml"
    )
    assert any("not valid UTF-8" in w for w in batch.warnings)
    assert link.hints is not None
    assert (link.hints.msg_type, link.hints.get("language")) == (MsgType.UPDATE, "fr-CA")
    feed_url = "http://rss2.naad-adna.pelmorex.com/feed.atom"
    assert index(path, url=feed_url).links == ()  # another host: needs allowed_hosts
    allowed = index(path, url=feed_url, allowed_hosts=("*.naad-adna.pelmorex.com",))
    assert [x.url for x in allowed.links] == [link.url]


@check("smn_conagua_avisos_feed_2022.atom.xml")
def _smn(path: Path) -> None:
    batch = index(path, url="https://smn.conagua.gob.mx/tools/PHP/feedsmn/cap.php")
    links = only_links(batch, 318)
    assert links[0].url == (
        "https://smn.conagua.gob.mx/tools/PHP/feedsmn/FILES/xml_cap/avisossmn-frentefrio-2827_cap.xml"
    )
    assert links[0].entry_id == "avisossmn-frentefrio-2827"
    kinds = Counter(link.entry_id.split("-")[1] for link in links)
    assert kinds == {"frentefrio": 173, "ciclontropical": 145}
    assert batch.complete is False


@check("sweden.atom")
def _sweden(path: Path) -> None:
    links = only_links(index(path, url="http://api.krisinformation.se/v1/feed?format=xml"), 4)
    assert links[0].url == "http://api.krisinformation.se/v1/capmessage/11337sv?format=xml"
    hints = links[0].hints
    assert hints is not None and hints.get("event") == "News"
    assert hints.get("area.areaDesc") == "Gävleborgs län"


# --------------------------------------------------------------------------- refused


@check("xee.atom")
def _xee(path: Path) -> None:
    data = path.read_bytes()
    for parser, kind in ((CapIndexParser(), "cap-index"), (RssParser(), "rss")):
        config = FeedConfig(name="xee", kind=kind, file=path, url="http://www.weather.gov/")
        with pytest.raises(FeedError) as caught:
            parser.parse(data, config)
        assert "entities" in caught.value.reason
        assert "root:" not in str(caught.value)  # /etc/passwd was never read


@check("ifrc_alert_hub_feed_registry.json")
def _ifrc_registry(path: Path) -> None:
    data = path.read_bytes()
    with pytest.raises(FeedError, match="registry of 169 CAP feed sources"):
        detect_kind(data)
    with pytest.raises(FeedError, match=r"not an api\.weather\.gov alert collection"):
        CapIndexParser().parse(data, FeedConfig(name="ifrc", kind="cap-index", file=path))
    # It is reference data that seeds the feed catalogue elsewhere.
    sources = json.loads(data)
    urls = {source["capAlertFeed"] for source in sources}
    assert (len(sources), len(urls)) == (169, 167)
    assert Counter(source["format"] for source in sources) == {"rss": 114, "atom": 55}
    mexico = next(s for s in sources if s["sourceId"] == "mx-smn-es")
    assert mexico["capAlertFeed"] == "https://smn.conagua.gob.mx/tools/PHP/feedsmn/cap.php"


# --------------------------------------------------------------------------- health bulletins


@check("au_health_gov_latest_news_rss_2021.xml")
def _au_health(path: Path) -> None:
    batch = bulletins(path)
    assert (len(batch.items), batch.errors, batch.warnings) == (20, (), ())
    alert = batch.items[0].alert
    assert summary(alert) == {
        "identifier": (
            "https://www.health.gov.au/news/"
            "changes-to-hotspots-for-commonwealth-support-in-cairns-yarrabah-dubbo-and-melbourne"
        ),
        "sender": "www.health.gov.au",
        "sent": "2021-08-11T12:31:00+00:00",  # Wed, 11 Aug 2021 22:31:00 +1000
        "status": "Actual",
        "msg_type": "Alert",
        "infos": 1,
        "languages": ("en",),
        "area_types": [],
        "references": [],
    }
    info = alert.infos[0]
    assert [c.value for c in info.categories] == ["Health"]
    assert info.event.startswith("Changes to Hotspots for Commonwealth support")
    assert info.web is not None and "utm_source=health.gov.au" in info.web
    assert info.sender_name == "Latest news | Australian Government Department of Health"
    assert info.description is not None and info.description.startswith(
        "The Australian Government Chief Medical Officer"
    )


@check("cdc_food_safety_recalls_rss_2013.xml")
def _cdc(path: Path) -> None:
    batch = bulletins(path)  # an undefined &reg;: not well-formed, read leniently
    assert len(batch.items) == 5 and batch.errors == ()
    assert batch.warnings[0].startswith("the feed is not well-formed (")
    first, second, *_, last = (item.alert for item in batch.items)
    assert summary(first) == {
        "identifier": "D4B79943-B12B-462A-A8AB-1AE3D17F24E0",
        "sender": "www.cdc.gov",
        "sent": "2013-04-12T21:03:00+00:00",  # 16:03 EST
        "status": "Actual",
        "msg_type": "Alert",
        "infos": 1,
        "languages": ("en-US",),
        "area_types": [],
        "references": [],
    }
    # A permalink guid with '&' cannot be a CAP identifier: a stable hash stands in.
    assert second.identifier.startswith("rss-")
    description = second.infos[0].description
    assert description is not None and "Bob Evans® Maple Links" in description
    assert last.infos[0].description is None  # an empty <description>


@check("usda_fsis_recalls_rss_2013.xml")
def _usda(path: Path) -> None:
    batch = bulletins(path)  # UTF-8 BOM, whitespace-only channel description
    [item] = batch.items
    assert summary(item.alert) == {
        "identifier": "D4B79943-B12B-462A-A8AB-1AE3D17F24E0",
        "sender": "www.fsis.usda.gov",
        "sent": "2013-04-13T02:03:15+00:00",
        "status": "Actual",
        "msg_type": "Alert",
        "infos": 1,
        "languages": ("en",),
        "area_types": [],
        "references": [],
    }
    assert item.alert.infos[0].event.startswith("original Louisiana Firm Recalls")
