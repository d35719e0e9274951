"""The CAP codec against the public samples in ../shared/corpus/cap (see its SOURCES.md).

Every file is read; the deliberately broken ones are listed with what they
must give. Strict mode is checked against the OASIS XSDs of the corpus
itself (loaded here with lxml, independently of the codec), and every alert
must come back from ``to_cap_xml`` as schema-valid CAP 1.2 equal to itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from alertcast.cap import CapValidationError, ParsedAlert, parse_cap, parse_cap_all, to_cap_xml
from alertcast.domain import Category, Certainty, Circle, MsgType, NamedValue, Scope, Status
from alertcast.errors import CapError
from tests.conftest import REPO_ROOT, corpus_files

pytestmark = pytest.mark.corpus

CAP_FILES = corpus_files("cap")
EDXL_DE = "urn:oasis:names:tc:emergency:EDXL:DE:1.0"
SCHEMA_FILES = {
    "urn:oasis:names:tc:emergency:cap:1.2": "CAP-v1.2.xsd",
    "urn:oasis:names:tc:emergency:cap:1.1": "CAP-v1.1.xsd",
    "http://www.incident.com/cap/1.0": "CAP-v1.0.xsd",
}

NEGATIVE = {
    "canada_errors.cap": "notices",
    "earthquake_signed.cap": "warnings",
    "invalid.cap": "warnings",
    "invalid_xmlns.cap": "error",
    "noaa_errors.cap": "warnings",
    "smhi.se.alerts.cap": "warnings",
    "sweden.cap": "warnings",
    "wis2box_togo_meteo_invalid_schema.xml": "warnings",
    "xee.cap": "error",
}
"""Files that break a rule, and how: a fatal CapError, warnings (strict refuses), or only notices.

canada_errors.cap is a negative test upstream, but its faults (an empty
<references/> in an Update, empty <restriction/> and <addresses/>) are all
schema-valid, so it parses strictly, with notices. earthquake_signed.cap is
CAP 1.1 with a signature, for which the 1.1 schema has no place; sweden.cap
has invented elements and wrong order; smhi.se.alerts.cap wraps 17 alerts in
a non-standard <alerts> element.
"""


def _ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


@pytest.fixture(scope="module")
def schemas(corpus_dir: Path) -> dict[str, etree.XMLSchema]:
    spec = corpus_dir / "spec"
    found = {
        ns: etree.XMLSchema(etree.parse(str(spec / name))) for ns, name in SCHEMA_FILES.items()
    }
    found[EDXL_DE] = etree.XMLSchema(etree.parse(str(spec / "edxlde-1_0.xsd")))
    return found


def schema_verdict(data: bytes, schemas: dict[str, etree.XMLSchema]) -> bool:
    """Is the file valid for the XSD of its root namespace (and, for EDXL-DE, its CAP content)?"""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return False
    schema = schemas.get(etree.QName(root).namespace or "")
    if schema is None or not schema.validate(root):
        return False
    if etree.QName(root).namespace != EDXL_DE:
        return True
    embedded = root.iterfind(f".//{{{EDXL_DE}}}embeddedXMLContent/*")
    return all(
        etree.QName(alert).namespace in schemas
        and schemas[etree.QName(alert).namespace or ""].validate(alert)
        for alert in embedded
    )


def read(path: Path) -> list[ParsedAlert] | CapError:
    try:
        return parse_cap_all(path.read_bytes())
    except CapError as error:
        return error


# --------------------------------------------------------------------------- every file


def test_the_corpus_is_there_with_its_negative_files(corpus_dir: Path) -> None:
    names = {path.name for path in (corpus_dir / "cap").iterdir()}
    assert len(names) == 54
    assert set(NEGATIVE) <= names


def test_bundled_schemas_are_the_oasis_files_of_the_corpus(corpus_dir: Path) -> None:
    for name in SCHEMA_FILES.values():
        bundled = REPO_ROOT / "alertcast" / "schemas" / name
        assert bundled.read_bytes() == (corpus_dir / "spec" / name).read_bytes()


@pytest.mark.parametrize("path", CAP_FILES, ids=_ids(CAP_FILES))
def test_each_file_reads_as_expected(path: Path, corpus_dir: Path) -> None:
    result = read(path)
    expected = NEGATIVE.get(path.name, "clean")
    if expected == "error":
        assert isinstance(result, CapError)
        assert result.path and result.reason
        return
    assert not isinstance(result, CapError), str(result)
    assert result, "no alert"
    warnings = [w for parsed in result for w in parsed.warnings]
    notices = [n for parsed in result for n in parsed.notices]
    if expected == "warnings":
        assert warnings
    else:
        assert warnings == []
    if expected == "notices":
        assert notices
    for parsed in result:
        assert parsed.cap_version in {"1.0", "1.1", "1.2"}
        assert all(w.startswith("/") and ": " in w for w in (*parsed.warnings, *parsed.notices))


@pytest.mark.parametrize("path", CAP_FILES, ids=_ids(CAP_FILES))
def test_strict_mode_agrees_with_the_xsd(path: Path, schemas: dict[str, etree.XMLSchema]) -> None:
    data = path.read_bytes()
    try:
        parse_cap_all(data, strict=True)
        accepted = True
    except CapError:
        accepted = False
    assert accepted is schema_verdict(data, schemas)


@pytest.mark.parametrize("path", CAP_FILES, ids=_ids(CAP_FILES))
def test_every_alert_becomes_valid_cap_1_2_and_reads_back_equal(
    path: Path, schemas: dict[str, etree.XMLSchema]
) -> None:
    result = read(path)
    if isinstance(result, CapError):
        assert NEGATIVE.get(path.name) == "error", str(result)
        return
    for parsed in result:
        data = to_cap_xml(parsed.alert)
        root = etree.fromstring(data)
        assert schemas["urn:oasis:names:tc:emergency:cap:1.2"].validate(root)
        again = parse_cap(data, strict=True)
        assert again.alert == parsed.alert
        assert again.warnings == ()


# --------------------------------------------------------------------------- negative files


def test_xee_is_refused_without_reading_anything(corpus_dir: Path) -> None:
    data = (corpus_dir / "cap" / "xee.cap").read_bytes()
    for strict in (False, True):
        with pytest.raises(CapError) as caught:
            parse_cap(data, strict=strict)
        assert caught.value.path == "/"
        assert "entities" in caught.value.reason
        assert "root:" not in str(caught.value)


def test_invalid_xmlns_names_the_namespace(corpus_dir: Path) -> None:
    with pytest.raises(CapError) as caught:
        parse_cap((corpus_dir / "cap" / "invalid_xmlns.cap").read_bytes())
    assert caught.value.path == "/alert"
    assert "urn:oasis:names:tc:emergency:alerts:1.2" in caught.value.reason


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("invalid.cap", ["/alert/scope: required but missing"]),
        (
            "wis2box_togo_meteo_invalid_schema.xml",
            ["/alert/info[1]/certainty: required but missing; read as Unknown"],
        ),
        (
            "noaa_errors.cap",
            [
                "/alert/info[1]/urgency: '' is not one of",
                "/alert/info[1]/severity: '' is not one of",
                "/alert/info[1]/certainty: '' is not one of",
                "/alert/info[1]/area[1]/polygon[1]: not a list of 'lat,lon' pairs",
            ],
        ),
        ("earthquake_signed.cap", ["/alert/Signature: CAP 1.1 has no place for an XML signature"]),
        (
            "sweden.cap",
            [
                "/alert/info[1]/senderName: out of order",
                "/alert/info[1]/area[1]/Type: <Type> is not a CAP 1.2 element here",
                "/alert/info[1]/area[1]/Polygon: <Polygon> is not a CAP 1.2 element here",
                "/alert/info[1]/resource[1]: out of order",
            ],
        ),
    ],
)
def test_negative_files_warn_at_the_right_place(
    corpus_dir: Path, name: str, expected: list[str]
) -> None:
    data = (corpus_dir / "cap" / name).read_bytes()
    warnings = parse_cap(data).warnings
    for start in expected:
        assert any(w.startswith(start) for w in warnings), (start, warnings)
    with pytest.raises(CapValidationError) as caught:
        parse_cap(data, strict=True)
    assert set(caught.value.problems) == set(warnings)


def test_canada_errors_has_only_notices(corpus_dir: Path) -> None:
    parsed = parse_cap((corpus_dir / "cap" / "canada_errors.cap").read_bytes(), strict=True)
    assert parsed.alert.msg_type is MsgType.UPDATE
    assert parsed.alert.references == ()
    assert parsed.alert.restriction is None
    assert parsed.alert.addresses == ()
    assert "/alert/references: empty; it references nothing" in parsed.notices


def test_smhi_list_of_alerts(corpus_dir: Path) -> None:
    data = (corpus_dir / "cap" / "smhi.se.alerts.cap").read_bytes()
    parsed = parse_cap_all(data)
    assert len(parsed) == 17
    assert len({p.alert.identifier for p in parsed}) == 17
    assert all(p.alert.infos[0].language == "sv-SE" for p in parsed)
    assert parsed[0].alert.infos[0].event_codes[1] == NamedValue("system_event_sv-SE", "Fjällväder")
    with pytest.raises(CapError, match="holds 17 alerts"):
        parse_cap(data)


# --------------------------------------------------------------------------- real values


def parsed_file(corpus_dir: Path, name: str) -> ParsedAlert:
    return parse_cap((corpus_dir / "cap" / name).read_bytes(), strict=True)


def test_mexico_spanish_latin_america_and_its_polygon(corpus_dir: Path) -> None:
    alert = parsed_file(corpus_dir, "mexico.xml").alert
    info = alert.infos[0]
    assert info.language == "es-419"
    assert alert.msg_type is MsgType.UPDATE
    assert alert.codes == ("08",)
    polygon = info.areas[0].polygons[0]
    assert len(polygon.points) == 29
    assert polygon.points[0] == polygon.points[-1]
    assert alert.info_for("es-MX") is info


def test_dwd_huge_file_has_eight_languages(corpus_dir: Path) -> None:
    name = "dwd_2.49.0.0.276.0.DWD.PVW.1687470000000.MUL_alert_huge.xml"
    alert = parsed_file(corpus_dir, name).alert
    assert len(alert.infos) == 8
    assert alert.languages()[0] == "de-DE"
    assert alert.languages() == ("de-DE", "en", "fr", "es", "ar", "ru", "tr", "pl")
    assert sum(len(area.geocodes) for info in alert.infos for area in info.areas) == 1344
    assert alert.info_for("pl-PL") is alert.infos[7]


def test_australia_circles_and_prefixed_namespace(corpus_dir: Path) -> None:
    parsed = parsed_file(corpus_dir, "australia.cap")
    circles = [c for info in parsed.alert.infos for area in info.areas for c in area.circles]
    assert circles
    assert all(isinstance(c, Circle) and -45 < c.lat < -10 and 110 < c.lon < 160 for c in circles)
    assert [info.language for info in parsed.alert.infos] == ["en-AU", "en-AU"]
    assert len(parsed.alert.infos[0].resources) + len(parsed.alert.infos[1].resources) == 2


def test_latin_1_earthquake_decodes_usulutan(corpus_dir: Path) -> None:
    parsed = parsed_file(corpus_dir, "earthquake-iso8859-1.cap")
    text = repr(parsed.alert)
    assert "Usulután" in text
    assert parsed.signed
    assert parsed.alert.infos[0].language == "en-US"


def test_burkina_41009_point_polygon(corpus_dir: Path) -> None:
    parsed = parsed_file(corpus_dir, "wis2box_burkina_faso_meteoburkina_signed_41009pt_polygon.xml")
    polygons = parsed.alert.infos[0].areas[0].polygons
    assert [len(p.points) for p in polygons] == [41009]
    assert parsed.signed
    assert parsed.alert.sent.utcoffset() is not None


def test_rfs_edxl_envelope(corpus_dir: Path) -> None:
    parsed = parse_cap((corpus_dir / "cap" / "rfs.xml").read_bytes(), strict=True)
    assert parsed.alert.sender == "webmaster@rfs.nsw.gov.au"
    assert parsed.alert.incidents == ("160068",)
    assert parsed.alert.infos[0].areas[0].circles


def test_cap_1_0_homeland_security_flat_parameter(corpus_dir: Path) -> None:
    parsed = parsed_file(corpus_dir, "oasis-cap10-appendixA1-homeland.xml")
    assert parsed.cap_version == "1.0"
    assert parsed.alert.infos[0].parameters == (NamedValue("HSAS", "ORANGE"),)
    assert parsed.alert.infos[0].categories == (Category.SECURITY,)


def test_signatures_in_their_odd_forms(corpus_dir: Path) -> None:
    for name in ("no_info_tag.cap", "ipaws-5e6ddbad023f1930ef6c1a5a.xml", "CanadaNaad.xml"):
        assert parsed_file(corpus_dir, name).signed, name
    assert not parsed_file(corpus_dir, "weather.cap").signed
    cancel = parsed_file(corpus_dir, "no_info_tag.cap").alert
    assert cancel.msg_type is MsgType.CANCEL
    assert cancel.infos == ()
    assert cancel.references[0].sender == "AtHoc"


def test_nws_empty_polygon_is_a_notice(corpus_dir: Path) -> None:
    parsed = parsed_file(corpus_dir, "nws-5c2cf27b1f56885d61654dc47fa411d5.xml")
    assert parsed.cap_version == "1.1"
    assert parsed.alert.infos[0].areas[0].polygons == ()
    assert parsed.notices == ("/alert/info[1]/area[1]/polygon[1]: empty; ignored",)


def test_taiwan_bom_and_chinese(corpus_dir: Path) -> None:
    parsed = parsed_file(corpus_dir, "taiwan.cap")
    assert parsed.alert.infos[0].language == "zh-tw"
    assert any("\u4e00" <= c <= "\u9fff" for c in parsed.alert.infos[0].event)


def test_status_test_and_minus_zero_times(corpus_dir: Path) -> None:
    ph = parsed_file(corpus_dir, "ph.cap").alert
    assert ph.status is Status.TEST
    assert ph.infos[0].language == "en-US"
    canada = parsed_file(corpus_dir, "CanadaNaad.xml").alert
    assert canada.sent.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert canada.scope is Scope.PUBLIC
    assert [i.language for i in canada.infos] == ["en-CA", "fr-CA"]


def test_unknown_vocabulary_stays_unknown(corpus_dir: Path) -> None:
    info = parsed_file(corpus_dir, "mexico.xml").alert.infos[0]
    assert info.certainty is Certainty.UNKNOWN
