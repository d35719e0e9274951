"""Hostile and broken input: every outcome is a clean CapError or a lenient parse with warnings."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertcast.cap import DEFAULT_MAX_BYTES, ParsedAlert, parse_cap, parse_cap_all
from alertcast.errors import CapError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cap"
CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"
SECRET = "alertcast-secret-7f3a9c"


def alert(headline: str = "Storm", *, prolog: str = "") -> bytes:
    return (
        f'{prolog}<alert xmlns="{CAP12}"><identifier>H-1</identifier>'
        "<sender>s@example.org</sender><sent>2024-01-01T00:00:00+00:00</sent>"
        "<status>Actual</status><msgType>Alert</msgType><scope>Public</scope>"
        "<info><category>Met</category><event>Storm</event><urgency>Immediate</urgency>"
        "<severity>Severe</severity><certainty>Observed</certainty>"
        f"<headline>{headline}</headline></info></alert>"
    ).encode()


def outcome(data: bytes, *, strict: bool = False) -> ParsedAlert | CapError:
    """The result or the CapError; any other exception fails the test."""
    try:
        return parse_cap(data, strict=strict)
    except CapError as error:
        return error


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(f'<!ENTITY leak "{SECRET}">'.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A local server that records every request made to it."""
    requests: list[str] = []
    handler = type("Handler", (_Recorder,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def assert_clean(result: ParsedAlert | CapError) -> None:
    assert SECRET not in repr(result)
    assert SECRET not in str(result)
    if isinstance(result, CapError):
        assert result.path
        assert result.reason
        assert "Traceback" not in result.reason


# --------------------------------------------------------------------------- entity expansion


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE alert [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">\n'.encode()
        for n in range(1, 10)
    )
    + b"]>\n"
)


@pytest.mark.parametrize("strict", [False, True])
def test_billion_laughs_is_refused(strict: bool) -> None:
    result = outcome(BILLION_LAUGHS + alert("&lol9;"), strict=strict)
    assert isinstance(result, CapError)
    assert result.path == "/"
    assert "entities" in result.reason


def test_billion_laughs_in_an_attribute_is_refused() -> None:
    data = BILLION_LAUGHS + alert().replace(b"<alert ", b'<alert a="&lol9;" ')
    result = outcome(data)
    assert isinstance(result, CapError)
    assert "entities" in result.reason


def test_quadratic_blowup_is_refused() -> None:
    big = "x" * 50_000
    data = f'<!DOCTYPE alert [<!ENTITY big "{big}">]>'.encode() + alert("&big;" * 2_000)
    result = outcome(data)
    assert isinstance(result, CapError)
    assert "entities" in result.reason


def test_entities_in_utf16_are_seen_too() -> None:
    text = BILLION_LAUGHS.decode().replace('<?xml version="1.0"?>', "") + alert("&lol9;").decode()
    result = outcome(text.encode("utf-16"))
    assert isinstance(result, CapError)
    assert "entities" in result.reason


# --------------------------------------------------------------------------- external resources


@pytest.mark.parametrize("strict", [False, True])
def test_xxe_to_a_local_file_never_reads_it(secret_file: Path, strict: bool) -> None:
    data = f'<!DOCTYPE alert [<!ENTITY xxe SYSTEM "{secret_file.as_uri()}">]>'.encode() + alert(
        "&xxe;"
    )
    result = outcome(data, strict=strict)
    assert isinstance(result, CapError)
    assert_clean(result)


def test_parameter_entity_to_a_local_file_never_reads_it(secret_file: Path) -> None:
    data = (
        f'<!DOCTYPE alert [<!ENTITY % file SYSTEM "{secret_file.as_uri()}"> %file;]>'.encode()
        + alert()
    )
    result = outcome(data)
    assert isinstance(result, CapError)
    assert_clean(result)


@pytest.fixture
def watched_fifo(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A named pipe that records whether anything opened it for reading.

    A reader blocks in open() until a writer appears; the watcher plays the
    writer, records the open and closes at once, so a regression shows up as
    a failed assertion, never as a hang.
    """
    if not hasattr(os, "mkfifo"):
        pytest.skip("named pipes are needed to observe file opens")
    path = tmp_path / "watched.dtd"
    os.mkfifo(path)
    opened: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.002)
                continue
            opened.append(str(path))
            os.close(fd)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield path, opened
    finally:
        stop.set()
        thread.join()


def test_external_dtd_naming_a_local_file_is_never_opened(
    watched_fifo: tuple[Path, list[str]],
) -> None:
    path, opened = watched_fifo
    for doctype in (
        f'<!DOCTYPE alert SYSTEM "{path.as_uri()}">',
        f'<!DOCTYPE alert PUBLIC "-//A/B/EN" "{path}">',
    ):
        parsed = outcome(doctype.encode() + alert())
        assert isinstance(parsed, ParsedAlert)
        assert "document type declaration" in parsed.warnings[0]
    assert isinstance(
        outcome(f'<!DOCTYPE alert SYSTEM "{path}">'.encode() + alert("&x;")), CapError
    )
    assert opened == []


def test_external_entities_naming_a_local_file_are_never_opened(
    watched_fifo: tuple[Path, list[str]],
) -> None:
    path, opened = watched_fifo
    data = f'<!DOCTYPE alert [<!ENTITY x SYSTEM "{path.as_uri()}">]>'.encode() + alert("&x;")
    assert isinstance(outcome(data), CapError)
    data = alert().replace(
        b"<identifier>",
        (
            f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{path}"/><identifier>'
        ).encode(),
    )
    assert isinstance(outcome(data), ParsedAlert)
    assert opened == []


def test_xxe_to_a_url_fetches_nothing(http_server: tuple[str, list[str]]) -> None:
    url, requests = http_server
    data = (
        f'<!DOCTYPE alert [<!ENTITY % remote SYSTEM "{url}/payload"> %remote;'
        f' <!ENTITY xxe SYSTEM "{url}/xxe">]>'
    ).encode() + alert("&xxe;")
    for strict in (False, True):
        assert isinstance(outcome(data, strict=strict), CapError)
    assert requests == []


def test_doctype_with_external_dtd_is_ignored_with_a_warning(
    http_server: tuple[str, list[str]],
) -> None:
    url, requests = http_server
    data = f'<!DOCTYPE alert PUBLIC "-//A/B/EN" "{url}/cap.dtd">'.encode() + alert()
    parsed = outcome(data)
    assert isinstance(parsed, ParsedAlert)
    assert parsed.alert.infos[0].headline == "Storm"
    assert parsed.warnings == (
        f"/: the document type declaration naming '{url}/cap.dtd' is not part of CAP;"
        " it was ignored and nothing it names was loaded",
    )
    assert isinstance(outcome(data, strict=True), CapError)
    assert requests == []


def test_schema_location_xinclude_and_stylesheet_are_not_followed(
    http_server: tuple[str, list[str]], secret_file: Path
) -> None:
    url, requests = http_server
    data = alert(prolog=f'<?xml-stylesheet type="text/xsl" href="{url}/x.xsl"?>').replace(
        b"<identifier>",
        (
            f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{secret_file.as_uri()}"'
            ' parse="text"/><identifier>'
        ).encode(),
    )
    data = data.replace(
        f'xmlns="{CAP12}"'.encode(),
        (
            f'xmlns="{CAP12}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
            f' xsi:schemaLocation="{CAP12} {url}/cap.xsd"'
        ).encode(),
    )
    parsed = outcome(data)
    assert isinstance(parsed, ParsedAlert)
    assert parsed.warnings == ("/alert/include: <include> is not a CAP 1.2 element here; ignored",)
    assert_clean(parsed)
    assert requests == []


# --------------------------------------------------------------------------- size and depth


def test_a_100_mb_document_is_refused_before_parsing() -> None:
    data = b"<a>" * (35 * 1024 * 1024)
    assert len(data) > 100 * 1024 * 1024
    result = outcome(data)
    del data
    assert isinstance(result, CapError)
    assert result.path == "/"
    assert "more than the limit of 5,242,880" in result.reason
    assert "not read" in result.reason


def test_the_size_limit_is_configurable() -> None:
    data = alert()
    assert parse_cap(data, max_bytes=len(data)).alert.identifier == "H-1"
    with pytest.raises(CapError, match="more than the limit of 100"):
        parse_cap(data, max_bytes=100)
    assert DEFAULT_MAX_BYTES == 5 * 1024 * 1024


def test_ten_thousand_deep_nesting_is_refused() -> None:
    data = alert("<b>" * 10_000 + "</b>" * 10_000)
    result = outcome(data)
    assert isinstance(result, CapError)
    assert "nested more than" in result.reason


def test_nesting_beyond_max_depth_is_refused() -> None:
    data = alert("<b>" * 40 + "x" + "</b>" * 40)
    result = outcome(data)
    assert isinstance(result, CapError)
    assert result.reason == "elements are nested more than 32 levels deep; refused"
    parsed = parse_cap(data, max_depth=60)
    assert parsed.alert.infos[0].headline == "x"
    assert parsed.warnings[0].startswith("/alert/info[1]/headline: must hold text only")


# --------------------------------------------------------------------------- encodings


def test_invalid_utf8_is_an_error_in_strict_mode() -> None:
    data = alert("Usulut\xe1n".encode("latin-1").decode("latin-1")).replace(
        "Usulután".encode(), b"Usulut\xe1n"
    )
    result = outcome(data, strict=True)
    assert isinstance(result, CapError)
    assert result.path == "/"
    assert "is not valid UTF-8" in result.reason


def test_invalid_utf8_is_replaced_with_a_warning_in_lenient_mode() -> None:
    data = alert("Usulut\xe1n").replace("Usulután".encode(), b"Usulut\xe1n")
    parsed = outcome(data)
    assert isinstance(parsed, ParsedAlert)
    assert parsed.alert.infos[0].headline == "Usulut\ufffdn"
    position = data.index(b"\xe1")
    assert parsed.warnings == (
        f"/: byte {position} (e1) is not valid UTF-8; declare the real encoding in the XML"
        " declaration; invalid bytes were replaced with U+FFFD",
    )


def test_unknown_declared_encoding_is_an_error() -> None:
    result = outcome(alert(prolog='<?xml version="1.0" encoding="klingon-8"?>'))
    assert isinstance(result, CapError)
    assert "klingon" in result.reason.lower() or "encoding" in result.reason.lower()


# --------------------------------------------------------------------------- broken documents


def _truncations() -> list[int]:
    length = len((FIXTURES / "full_12.xml").read_bytes().rstrip())
    return [*range(1, length - len("</alert>"), 89), length - 1]


@pytest.mark.parametrize("cut", _truncations())
def test_truncated_documents_give_a_clean_error(cut: int) -> None:
    data = (FIXTURES / "full_12.xml").read_bytes()[:cut]
    for strict in (False, True):
        result = outcome(data, strict=strict)
        assert isinstance(result, CapError)
        assert result.path == "/"


def test_truncation_is_explained() -> None:
    data = (FIXTURES / "full_12.xml").read_bytes()[:1000]
    result = outcome(data)
    assert isinstance(result, CapError)
    assert "truncated" in result.reason


def test_str_is_not_a_document() -> None:
    with pytest.raises(TypeError, match="bytes"):
        parse_cap(alert().decode())  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_escape_as_another_exception(data: bytes) -> None:
    for strict in (False, True):
        try:
            parse_cap_all(data, strict=strict)
        except CapError as error:
            assert error.reason


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_alerts_never_escape_as_another_exception(data: st.DataObject) -> None:
    original = bytearray((FIXTURES / "full_12.xml").read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    for strict in (False, True):
        try:
            parsed = parse_cap(bytes(original), strict=strict)
        except CapError as error:
            assert error.reason
        else:
            assert parsed.alert.identifier
