"""CAP's small text formats (date-times, polygons, circles, quoted lists, numbers), both ways.

Each reader returns the value and, separately, what was wrong with the text,
so the caller decides whether a problem is a schema violation (a warning,
fatal in strict mode) or only worth a notice. None of them raises on bad
input. Polygons are read without a Python loop per point: the 41,009-point
polygons some met services publish must not cost a second.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from alertcast.domain import Circle, Point, parse_datetime

CAP_DATETIME = re.compile(r"\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d", re.ASCII)
"""The CAP 1.2 date-time pattern (its ``[-,+]`` admits a comma, which xs:dateTime then rejects)."""

CAP_DATETIME_FORM = "YYYY-MM-DDThh:mm:ss±hh:mm"

_MAX_OFFSET = timedelta(hours=14)
_LANGUAGE = re.compile(r"[a-zA-Z]{1,8}(?:-[a-zA-Z0-9]{1,8})*", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_SPACE_AROUND_COMMA = re.compile(r"[ \t\r\n]*,[ \t\r\n]*")
_HAS_SPACE_AROUND_COMMA = re.compile(r"[ \t\r\n],|,[ \t\r\n]")
_QUOTED_LIST = re.compile(r'"([^"]*)"|([^ \t\r\n]+)')


XML_SPACE = " \t\r\n"
"""XML's whitespace; other Unicode spaces (NBSP...) are content, not separators."""

_XML_SPACE_RUN = re.compile(r"[ \t\r\n]+")


def trim(text: str) -> str:
    """Strip XML whitespace from both ends."""
    return text.strip(XML_SPACE)


def collapse(text: str) -> str:
    """XSD whiteSpace="collapse": trim, and squeeze inner runs of whitespace to one space."""
    return _XML_SPACE_RUN.sub(" ", text).strip(" ")


def split_on_space(text: str) -> list[str]:
    """Split at runs of XML whitespace, as CAP's space-delimited lists are."""
    return _XML_SPACE_RUN.split(trim(text)) if trim(text) else []


def read_datetime(text: str) -> tuple[datetime | None, str | None]:
    """A CAP date-time and the problem with its text, if any.

    Text outside the CAP form is still read when it can be (``Z``, fractions
    of a second, ``2024-01-01 10:00+01:00``); a missing offset is read as
    UTC. Fractions of a second are dropped because CAP cannot carry them.
    """
    value = collapse(text)
    if not value:
        return None, "empty date-time"
    if CAP_DATETIME.fullmatch(value):
        try:
            parsed = parse_datetime(value)
        except ValueError:
            return None, f"{value!r} is not a real date and time"
        offset = parsed.utcoffset()
        if offset is not None and abs(offset) > _MAX_OFFSET:
            return parsed, f"{value!r} has a UTC offset beyond ±14:00"
        return parsed, None
    problem = f"{value!r} is not in the CAP date-time form {CAP_DATETIME_FORM}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None, f"{problem} and cannot be read"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
        problem += "; it has no UTC offset and was read as UTC"
    if parsed.microsecond:
        parsed = parsed.replace(microsecond=0)
        problem += "; the fraction of a second was dropped"
    return parsed, problem


def is_language(text: str) -> bool:
    """xs:language (RFC 3066 shape), as the schemas require for ``<language>``."""
    return _LANGUAGE.fullmatch(text) is not None


def read_integer(text: str) -> int | None:
    """xs:integer, or None."""
    value = collapse(text)
    return int(value) if _INTEGER.fullmatch(value) else None


def read_number(text: str, *, decimal_only: bool) -> float | None:
    """A finite number: xs:decimal when ``decimal_only``, else also with an exponent."""
    value = collapse(text)
    pattern = _DECIMAL if decimal_only else _FLOAT
    if not pattern.fullmatch(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def format_number(value: float) -> str:
    """Shortest text that reads back as exactly ``value``, never in exponent form (xs:decimal)."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be written in CAP")
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def read_polygon(text: str) -> tuple[tuple[Point, ...] | None, str | None]:
    """``lat,lon lat,lon ...`` as points, or None with the reason.

    Spaces around the commas (``45.1, -73.2``) are a common slip and are
    tolerated, with a problem reported so strict mode still refuses them.
    """
    value = trim(text)
    if not value:
        return None, "empty polygon"
    points = _pairs(value)
    if points is not None:
        return points, None
    if _HAS_SPACE_AROUND_COMMA.search(value):
        points = _pairs(_SPACE_AROUND_COMMA.sub(",", value))
        if points is not None:
            return points, "spaces around the commas between latitude and longitude"
    return None, (
        "not a list of 'lat,lon' pairs separated by spaces, in decimal degrees"
        " (latitude within ±90, longitude within ±180)"
    )


def _pairs(value: str) -> tuple[Point, ...] | None:
    """Strictly ``lat,lon`` tokens separated by whitespace, within range; else None.

    Written with C-level string and map operations only: no Python loop per point.
    ``str.split`` splits ASCII text on exactly XML's whitespace (the other
    ASCII separators are control characters XML forbids), hence the ASCII check.
    """
    tokens = value.split()
    if (
        value.count(",") != len(tokens)
        or not all(map(operator.contains, tokens, itertools.repeat(",")))
        or not value.isascii()
        or "_" in value
        or "n" in value.lower()
    ):
        return None
    try:
        numbers = list(map(float, ",".join(tokens).split(",")))
    except ValueError:
        return None
    lats = numbers[0::2]
    lons = numbers[1::2]
    if min(lats) < -90 or max(lats) > 90 or min(lons) < -180 or max(lons) > 180:
        return None
    return tuple(zip(lats, lons, strict=True))


def polygon_shape_problems(points: tuple[Point, ...]) -> list[str]:
    """CAP's geometric rules for a polygon: at least four points, first equals last."""
    problems = []
    if len(points) < 4:
        problems.append(f"only {len(points)} point(s); CAP requires at least 4")
    if points[0] != points[-1]:
        problems.append("not closed: the first and last points differ")
    return problems


def format_polygon(points: tuple[Point, ...]) -> str:
    """The CAP text of a polygon; numbers written to read back exactly."""
    return " ".join(f"{format_number(lat)},{format_number(lon)}" for lat, lon in points)


def read_circle(text: str) -> tuple[Circle | None, str | None]:
    """``lat,lon radius`` (radius in km) as a Circle, or None with the reason."""
    value = trim(text)
    problem = None
    if _HAS_SPACE_AROUND_COMMA.search(value):
        value = _SPACE_AROUND_COMMA.sub(",", value)
        problem = "spaces around the comma between latitude and longitude"
    parts = split_on_space(value)
    centre = parts[0].split(",") if len(parts) == 2 else []
    bad = "not 'lat,lon radius' with the radius in kilometres"
    if len(centre) != 2:
        return None, bad
    lat, lon, radius = _finite(centre[0]), _finite(centre[1]), _finite(parts[1])
    if lat is None or lon is None or radius is None:
        return None, bad
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or radius < 0:
        return None, "latitude, longitude or radius out of range"
    return Circle(lat, lon, radius), problem


def format_circle(circle: Circle) -> str:
    return (
        f"{format_number(circle.lat)},{format_number(circle.lon)} {format_number(circle.radius_km)}"
    )


def _finite(text: str) -> float | None:
    if not _FLOAT.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def read_quoted_list(text: str) -> tuple[str, ...]:
    """CAP's space-separated list where an entry containing spaces is in double quotes."""
    return tuple(
        match.group(1) if match.group(1) is not None else match.group(2)
        for match in _QUOTED_LIST.finditer(text)
    )


def format_quoted_list(entries: tuple[str, ...], what: str) -> str:
    """The inverse of :func:`read_quoted_list`; refuses entries it could not write faithfully."""
    text = " ".join(
        f'"{entry}"' if not entry or any(c in XML_SPACE for c in entry) else entry
        for entry in entries
    )
    if read_quoted_list(text) != tuple(entries):
        raise ValueError(f"{what} {list(entries)!r} cannot be written as a CAP list (quotes)")
    return text
