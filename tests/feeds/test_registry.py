"""Feed kinds by name, kind detection, and ``alertcast parse`` across every kind."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from alertcast.cli import main
from alertcast.errors import FeedError
from alertcast.feeds import registry
from alertcast.feeds.cap_index import CapIndexParser
from alertcast.feeds.cap_single import CapParser
from alertcast.feeds.registry import PARSERS, detect_kind, parser_for
from alertcast.feeds.rss import RssParser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MIXED = FIXTURES / "feeds" / "index_mixed.atom"
BULLETINS = FIXTURES / "feeds" / "boletines_salud.rss"
GEOJSON = FIXTURES / "feeds" / "nws_active_small.geojson"
CAP_FILE = FIXTURES / "cap" / "full_12.xml"
CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "en")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# --------------------------------------------------------------------------- PARSERS


def test_own_kinds_are_always_there() -> None:
    assert isinstance(parser_for("cap"), CapParser)
    assert isinstance(parser_for("cap-index"), CapIndexParser)
    assert isinstance(parser_for("rss"), RssParser)
    assert {"cap", "cap-index", "rss"} <= set(PARSERS)
    for kind, parser in PARSERS.items():
        assert parser.kind == kind


@pytest.mark.parametrize(
    ("kind", "module"),
    [("road-text", "alertcast.feeds.road_text"), ("open511", "alertcast.feeds.open511")],
)
def test_road_kinds_load_lazily_when_installed(kind: str, module: str) -> None:
    if _installed(module):
        assert parser_for(kind).kind == kind
        assert kind in PARSERS
    else:
        assert kind not in PARSERS
        with pytest.raises(FeedError, match="not available"):
            parser_for(kind)


def test_a_missing_module_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._LAZY, "road-text", ("alertcast.feeds.no_such_module", "X"))
    parsers = registry._Parsers()
    assert "road-text" not in parsers
    assert set(parsers) >= {"cap", "cap-index", "rss"}
    monkeypatch.setattr(registry, "PARSERS", parsers)
    with pytest.raises(FeedError, match="not available in this installation"):
        parser_for("road-text")


def test_unknown_kinds_name_the_known_ones() -> None:
    with pytest.raises(FeedError, match="cap, cap-index, rss, road-text, open511"):
        parser_for("telepathy")


# --------------------------------------------------------------------------- detect_kind


CAP_DOC = (
    f'<?xml version="1.0"?><!-- note --><alert xmlns="{CAP12}"><identifier>x</identifier></alert>'
)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (CAP_DOC.encode(), "cap"),
        (b"\xef\xbb\xbf  \n" + CAP_DOC.encode(), "cap"),
        (CAP_DOC.encode("utf-16"), "cap"),
        (
            b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY a "b">]><alert xmlns="x"/>',
            "cap",
        ),
        (b"<cap:alert xmlns:cap='urn:oasis:names:tc:emergency:cap:1.1'/>", "cap"),
        (b"<EDXLDistribution xmlns='urn:oasis:names:tc:emergency:EDXL:DE:1.0'/>", "cap"),
        (
            b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><link type="application/cap+xml"'
            b' href="https://x.example/1"/></entry></feed>',
            "cap-index",
        ),
        (
            b"<rss version='2.0'><channel><item><link>https://x.example/a.cap</link></item>"
            b"</channel></rss>",
            "cap-index",
        ),
        (
            b"<rss version='2.0'><channel><title>State CAP Index</title></channel></rss>",
            "cap-index",
        ),
        (
            b"<rss version='2.0'><channel><title>Comunicados</title><item><link>"
            b"https://salud.example.mx/capacitacion</link></item></channel></rss>",
            "rss",
        ),
        (
            b"<rss version='2.0'><channel><title>Noticias</title><item><link>"
            b"https://salud.example.mx/news/cap-and-trade.html</link></item></channel></rss>",
            "rss",
        ),
        (
            b"<rss version='2.0'><channel><item><link>https://x.example/Get.aspx?capID=7</link>"
            b"</item></channel></rss>",
            "cap-index",
        ),
        (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>News</title></feed>', "rss"),
        (b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>', "rss"),
    ],
)
def test_detect_kind(data: bytes, kind: str) -> None:
    assert detect_kind(data) == kind


def test_detect_kind_of_the_fixtures() -> None:
    assert detect_kind(MIXED.read_bytes()) == "cap-index"
    assert detect_kind(BULLETINS.read_bytes()) == "rss"
    assert detect_kind(GEOJSON.read_bytes()) == "cap-index"
    assert detect_kind(CAP_FILE.read_bytes()) == "cap"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"just words", "neither XML nor JSON"),
        (b"<html><body/></html>", "root <html>"),
        (b'{"hello": "world"}', "JSON that no feed kind recognises"),
        (b'[{"sourceId": "mx-smn-es", "capAlertFeed": "https://x.example/rss.xml"}]', "registry"),
    ],
)
def test_detect_kind_refuses_what_no_kind_reads(data: bytes, reason: str) -> None:
    with pytest.raises(FeedError, match=reason):
        detect_kind(data)


def test_a_failing_sniffer_does_not_stop_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(data: bytes) -> bool:
        raise RuntimeError("bug in a sniffer")

    monkeypatch.setattr(registry, "_looks_like", lambda kind: broken)
    assert detect_kind(BULLETINS.read_bytes()) == "rss"


def test_road_sniffers_are_asked_before_plain_rss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        registry, "_looks_like", lambda kind: (lambda data: True) if kind == "road-text" else None
    )
    assert detect_kind(BULLETINS.read_bytes()) == "road-text"
    # ...but never before CAP or a CAP index.
    assert detect_kind(MIXED.read_bytes()) == "cap-index"
    assert detect_kind(CAP_FILE.read_bytes()) == "cap"


# --------------------------------------------------------------------------- alertcast parse


def test_parse_detects_each_file_and_prints_alerts_links_and_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["parse", str(CAP_FILE), str(MIXED), str(BULLETINS)]) == 1
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    by_file: dict[str, list[dict[str, object]]] = {}
    for record in records:
        by_file.setdefault(str(record["source_file"]), []).append(record)
    assert len(by_file[str(CAP_FILE)]) == 1
    index = by_file[str(MIXED)]
    assert [r.get("identifier") for r in index if "identifier" in r] == ["PC-0001"]
    # Read from a file there is no feed URL: nothing is fetched, so absolute links are listed
    # as found, and a relative one cannot be resolved.
    assert [(r["linked"], r["entry_id"]) for r in index if "linked" in r] == [
        ("http://169.254.169.254/latest/meta-data/", "tag:alertas.example.mx,2026:PC-0005"),
        ("https://alertas.example.mx/cap/PC-0003.xml", "tag:alertas.example.mx,2026:PC-0007"),
    ]
    assert {r["updated"] for r in index if "linked" in r} == {
        "2026-01-19T11:08:00-06:00",
        "2026-01-19T11:06:00-06:00",
    }
    bulletins = by_file[str(BULLETINS)]
    assert bulletins[0]["identifier"] == "SSA-2026-014"
    infos = bulletins[0]["infos"]
    assert isinstance(infos, list) and infos[0]["category"] == ["Health"]
    errors = captured.err.splitlines()
    assert f"error: {MIXED}: entry 2: the embedded CAP cannot be read:" in "\n".join(errors)
    assert any(line.startswith(f"error: {MIXED}: entry 4: ") for line in errors)
    assert f"error: {MIXED}: entry 3: link '/cap/PC-0003.xml' is relative" in "\n".join(errors)
    assert any(line.startswith(f"error: {BULLETINS}: entry 3: ") for line in errors)
    assert f"warning: {BULLETINS}: entry 5 repeats entry 1; read once" in errors
    assert "Traceback" not in captured.err


def test_parse_without_errors_exits_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = tmp_path / "index.atom"
    good.write_text(
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>CAP</title><entry><id>urn:1</id>'
        '<title>x</title><link type="application/cap+xml" href="https://x.example/1.xml"/>'
        "</entry></feed>",
        encoding="utf-8",
    )
    assert main(["parse", str(good)]) == 0
    assert json.loads(capsys.readouterr().out)["linked"] == "https://x.example/1.xml"


def test_parse_with_a_forced_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--kind", "rss", str(CAP_FILE)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {CAP_FILE}: ")
    assert main(["parse", "--kind", "cap-index", str(GEOJSON)]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["infos"][0]["event"] == "Tornado Warning"
    assert f"error: {GEOJSON}: entry 2: sent: required but missing" in captured.err


def test_parse_refuses_a_registry_of_feeds(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    registry_file = tmp_path / "feeds.json"
    registry_file.write_text(
        json.dumps([{"sourceId": "mx-smn-es", "capAlertFeed": "https://x.example/cap.php"}]),
        encoding="utf-8",
    )
    assert main(["parse", str(registry_file)]) == 1
    assert "registry of 1 CAP feed sources" in capsys.readouterr().err


def test_parse_strict_applies_to_feed_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    broken = FIXTURES / "feeds" / "bozo.rss"
    assert broken.is_file()
    assert main(["parse", str(broken)]) == 0
    assert "not well-formed" in capsys.readouterr().err
    assert main(["parse", "--strict", str(broken)]) == 1
    assert "error:" in capsys.readouterr().err
