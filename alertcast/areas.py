"""The area catalogue: named places people subscribe to, with their shapes.

A person who does not want to share a location picks a place instead
(a municipality, a county, a forecast zone). The catalogue holds those places,
imported from GeoJSON published by statistics offices and weather services,
so that targeting can test an alert's polygon against a subscriber's
municipality, and a geocode-only alert (``INEGI_CVEGEO=09``) against a
subscriber's shared point.

Codes are ``SCHEME:value`` (``INEGI_CVEGEO:09015``): the scheme is the CAP
geocode ``valueName`` the value belongs to, so the same table serves Mexican
municipalities, US counties (``FIPS``) and European regions (``NUTS``) side by
side, and an alert's geocodes compare with subscribers' codes directly.

How codes of one scheme relate (:func:`codes_overlap`):

``INEGI_CVEGEO`` (aliases ``CVEGEO``, ``INEGI``) and ``NUTS`` (``NUTS1``..``NUTS3``)
    hierarchical by prefix: state ``09`` holds municipality ``09015``, which
    holds locality ``090150001``; ``FR1`` holds ``FR101``. Two codes overlap
    when one is a prefix of the other.
``SAME`` and ``FIPS`` (``FIPS6``, ``FIPS5``): one family
    SAME is ``PSSCCC`` (P the part of the county, 0 for all of it; SS the state;
    CCC the county, 000 for the whole state); FIPS is ``SSCCC``, a whole county.
    They overlap when the state is the same and the county and the part are
    equal or one of them is "all".
``UGC``
    ``SSZNNN`` or ``SSCNNN``: exact, or ``000``/``ALL`` for every zone (or
    county) of the state.
``EMMA_ID`` and any other scheme
    exact (case-insensitive) values of the same scheme.

Geometries are stored as WKB with their bounding box, so :meth:`containing`
narrows by box in SQL before testing shapes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import shapely
import structlog
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import and_, case, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.errors import AlertcastError
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import areas as areas_table

log = structlog.get_logger(__name__)

INEGI = "INEGI_CVEGEO"
NUTS = "NUTS"
FIPS = "FIPS"
UGC = "UGC"
EMMA = "EMMA_ID"

_FAMILIES: dict[str, str] = {
    "INEGI_CVEGEO": INEGI,
    "CVEGEO": INEGI,
    "INEGI": INEGI,
    "NUTS": NUTS,
    "NUTS0": NUTS,
    "NUTS1": NUTS,
    "NUTS2": NUTS,
    "NUTS3": NUTS,
    "SAME": FIPS,
    "FIPS": FIPS,
    "FIPS5": FIPS,
    "FIPS6": FIPS,
    "UGC": UGC,
    "EMMA_ID": EMMA,
}
"""Geocode ``valueName`` spellings → the family whose matching rule applies."""

_INEGI_LENGTHS = (2, 5, 9)
"""State, municipality, locality."""

_WRITE_BATCH = 500


class AreaError(AlertcastError):
    """A catalogue file cannot be imported at all (unreadable, not GeoJSON, bad arguments)."""


# --------------------------------------------------------------------------- codes


def scheme_family(scheme: str) -> str:
    """The matching family of a geocode scheme name (case-insensitive); itself when unknown."""
    name = scheme.strip().upper()
    return _FAMILIES.get(name, name)


def normalize_value(scheme: str, value: str) -> str:
    """A geocode value as the catalogue stores it: trimmed, upper case."""
    return value.strip().upper()


def make_code(scheme: str, value: str) -> str:
    """``SCHEME:value``, the catalogue code."""
    return f"{scheme.strip().upper()}:{normalize_value(scheme, value)}"


def split_code(code: str) -> tuple[str, str]:
    """``INEGI_CVEGEO:09015`` → ``("INEGI_CVEGEO", "09015")``; ValueError without a scheme."""
    scheme, sep, value = code.partition(":")
    if not sep or not scheme.strip() or not value.strip():
        raise ValueError(f"area code {code!r} is not 'SCHEME:value'")
    return scheme.strip().upper(), normalize_value(scheme, value)


def _fips_parts(value: str) -> tuple[str, str, str] | None:
    """(part, state, county) of a SAME (6 digits), FIPS (5) or state (2) code."""
    if not value.isdigit():
        return None
    if len(value) == 6:
        return value[0], value[1:3], value[3:]
    if len(value) == 5:
        return "0", value[:2], value[2:]
    if len(value) == 2:
        return "0", value, "000"
    return None


def _fips_overlap(a: str, b: str) -> bool:
    pa, pb = _fips_parts(a), _fips_parts(b)
    if pa is None or pb is None:
        return a == b
    if pa[1] != pb[1]:
        return False
    if pa[2] != pb[2] and "000" not in (pa[2], pb[2]):
        return False
    return pa[0] == pb[0] or "0" in (pa[0], pb[0])


def _ugc_overlap(a: str, b: str) -> bool:
    if a == b:
        return True
    if len(a) != 6 or len(b) != 6 or a[:3] != b[:3]:
        return False
    return a[3:] in ("000", "ALL") or b[3:] in ("000", "ALL")


def codes_overlap(scheme_a: str, value_a: str, scheme_b: str, value_b: str) -> bool:
    """True when two geocodes name places that share ground (see the module's table)."""
    family = scheme_family(scheme_a)
    if family != scheme_family(scheme_b):
        return False
    a = normalize_value(scheme_a, value_a)
    b = normalize_value(scheme_b, value_b)
    if not a or not b:
        return False
    if family in (INEGI, NUTS):
        return a.startswith(b) or b.startswith(a)
    if family == FIPS:
        return _fips_overlap(a, b)
    if family == UGC:
        return _ugc_overlap(a, b)
    return a == b


# --------------------------------------------------------------------------- names


_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def fold_name(text: str) -> str:
    """Accent-, case- and punctuation-free: ``Benito Juárez`` and ``benito juarez`` fold alike.

    People type place names on phone keyboards without accents; ñ folds to n
    as well (``Peñón`` → ``penon``), and punctuation to spaces
    (``Gustavo A. Madero`` → ``gustavo a madero``).
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NOT_ALNUM.sub(" ", bare).split())


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class Area:
    """A catalogue place. ``bbox`` is ``(min_lon, min_lat, max_lon, max_lat)``, shapely's order."""

    code: str
    scheme: str
    name: str
    geometry: BaseGeometry
    bbox: tuple[float, float, float, float]

    @property
    def value(self) -> str:
        """The code without its scheme (``09015``)."""
        return self.code.partition(":")[2]

    def to_json(self) -> dict[str, Any]:
        """Without the geometry: what a list or a keyboard shows."""
        return {"code": self.code, "scheme": self.scheme, "name": self.name, "bbox": self.bbox}


@dataclass(frozen=True, slots=True)
class FeatureProblem:
    """A feature of an imported file that was left out, and why. ``index`` counts from 0."""

    index: int
    reason: str
    code: str | None = None

    def __str__(self) -> str:
        where = f"feature {self.index}" + (f" ({self.code})" if self.code else "")
        return f"{where}: {self.reason}"


class ProgressLike(Protocol):
    """What the import reports to: :class:`alertcast.progress.Progress` fits."""

    total: int | None

    def advance(self, steps: int = 1) -> None: ...


class _BadFeature(Exception):
    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


# --------------------------------------------------------------------------- reading features


def _code_value(raw: Any, scheme: str, field: str) -> str:
    """The feature's code value; numbers lost their leading zeros, so INEGI codes are padded."""
    family = scheme_family(scheme)
    if isinstance(raw, bool) or raw is None:
        raise _BadFeature(f"property {field!r} is missing")
    if isinstance(raw, int):
        text = str(raw)
        if family == INEGI:
            width = next((n for n in _INEGI_LENGTHS if len(text) <= n), len(text))
            text = text.zfill(width)
    elif isinstance(raw, str):
        text = raw.strip()
    else:
        raise _BadFeature(f"property {field!r} is not text: {raw!r}")
    if not text:
        raise _BadFeature(f"property {field!r} is empty")
    if ":" in text:
        raise _BadFeature(f"code {text!r} contains ':'")
    if family == INEGI and (not text.isdigit() or len(text) not in _INEGI_LENGTHS):
        raise _BadFeature(
            f"{text!r} is not an INEGI CVEGEO (2, 5 or 9 digits: state, municipality, locality)"
        )
    return normalize_value(scheme, text)


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """Only the polygons of ``geometry``, repaired when invalid (published boundaries often are)."""
    if not shapely.is_valid(geometry):
        geometry = shapely.make_valid(geometry)
    parts = [p for p in shapely.get_parts(geometry) if isinstance(p, Polygon | MultiPolygon)]
    polygons: list[Polygon] = []
    for part in parts:
        polygons.extend(part.geoms if isinstance(part, MultiPolygon) else [part])
    polygons = [p for p in polygons if not p.is_empty and p.area > 0]
    if not polygons:
        return Polygon()
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def _feature_geometry(feature: Mapping[str, Any]) -> BaseGeometry:
    data = feature.get("geometry")
    if not isinstance(data, Mapping):
        raise _BadFeature("no geometry")
    kind = data.get("type")
    if kind not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        raise _BadFeature(f"geometry is a {kind}, not a Polygon or MultiPolygon")
    try:
        geometry = shape(dict(data))
    except Exception as exc:  # shapely raises many kinds for malformed coordinates
        raise _BadFeature(f"geometry cannot be read: {exc}") from None
    if geometry.is_empty:
        raise _BadFeature("geometry is empty")
    min_x, min_y, max_x, max_y = geometry.bounds
    if (
        not (-180.0 <= min_x <= max_x <= 180.0 and -90.0 <= min_y <= max_y <= 90.0)
        or not np.isfinite(geometry.bounds).all()
    ):
        raise _BadFeature(
            "coordinates are not WGS 84 longitude/latitude "
            f"(bounds {min_x:.6g},{min_y:.6g},{max_x:.6g},{max_y:.6g}); "
            "reproject the file to EPSG:4326"
        )
    polygonal = _polygonal(geometry)
    if polygonal.is_empty:
        raise _BadFeature("geometry has no area")
    return polygonal


def _row(
    feature: Any, *, scheme: str, code_field: str, name_field: str, source: str, at: datetime
) -> dict[str, Any]:
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise _BadFeature("not a GeoJSON Feature")
    properties = feature.get("properties")
    if not isinstance(properties, Mapping):
        raise _BadFeature("no properties")
    value = _code_value(properties.get(code_field), scheme, code_field)
    code = make_code(scheme, value)
    name = properties.get(name_field)
    if not isinstance(name, str) or not name.strip():
        raise _BadFeature(f"property {name_field!r} is missing or empty", code)
    try:
        geometry = _feature_geometry(feature)
    except _BadFeature as exc:
        raise _BadFeature(exc.reason, code) from None
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    clean = " ".join(name.split())
    return {
        "code": code,
        "scheme": scheme,
        "value": value,
        "name": clean,
        "name_folded": fold_name(clean),
        "geometry": shapely.to_wkb(geometry),
        "min_lat": min_lat,
        "min_lon": min_lon,
        "max_lat": max_lat,
        "max_lon": max_lon,
        "source": source,
        "imported_at": at,
    }


def _features(document: Any) -> list[Any]:
    if isinstance(document, Mapping):
        if document.get("type") == "FeatureCollection" and isinstance(
            document.get("features"), list
        ):
            return list(document["features"])
        if document.get("type") == "Feature":
            return [document]
    raise AreaError("not a GeoJSON FeatureCollection (or Feature)")


# --------------------------------------------------------------------------- the catalogue


def _area(row: Any) -> Area:
    geometry = shapely.from_wkb(row.geometry)
    return Area(
        code=row.code,
        scheme=row.scheme,
        name=row.name,
        geometry=geometry,
        bbox=(float(row.min_lon), float(row.min_lat), float(row.max_lon), float(row.max_lat)),
    )


class AreaCatalogue:
    """The ``areas`` table: import, look up, search by name, find by point."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._geoms: dict[str, BaseGeometry] = {}
        self._geoms_version: tuple[int, Any] | None = None

    async def import_geojson(
        self,
        path: Path | str,
        *,
        scheme: str,
        code_field: str,
        name_field: str,
        actor: str,
        progress: ProgressLike | None = None,
        problems: list[FeatureProblem] | None = None,
    ) -> int:
        """Import (or replace, by code) every good feature of a GeoJSON file; returns how many.

        A bad feature (no code, no name, not a polygon, projected coordinates)
        is left out, logged and added to ``problems`` with its index and the
        reason; the others are imported all the same. A feature whose code
        came earlier in the file is a problem too (the first one stays). One
        audit record ``areas.imported`` names the file, its SHA-256 and the
        count, so a catalogue's origin can always be proven.
        """
        scheme = scheme.strip().upper()
        if not scheme or ":" in scheme:
            raise AreaError(f"scheme {scheme!r} must be a non-empty name without ':'")
        file = Path(path)
        try:
            data = await asyncio.to_thread(file.read_bytes)
        except OSError as exc:
            raise AreaError(f"cannot read {file}: {exc.strerror or exc}") from None
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise AreaError(f"{file.name} is not JSON: {exc}") from None
        features = _features(document)
        if progress is not None and progress.total is None:
            progress.total = len(features)
        found = problems if problems is not None else []
        first_problem = len(found)
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        first_index: dict[str, int] = {}
        for index, feature in enumerate(features):
            try:
                row = _row(
                    feature,
                    scheme=scheme,
                    code_field=code_field,
                    name_field=name_field,
                    source=file.name,
                    at=now,
                )
                if row["code"] in first_index:
                    raise _BadFeature(
                        f"duplicate code (first at feature {first_index[row['code']]})",
                        row["code"],
                    )
            except _BadFeature as exc:
                problem = FeatureProblem(index, exc.reason, exc.code)
                found.append(problem)
                log.warning(
                    "areas.bad_feature",
                    file=file.name,
                    index=index,
                    code=exc.code,
                    reason=exc.reason,
                )
            else:
                first_index[row["code"]] = index
                rows.append(row)
            if progress is not None:
                progress.advance()
        await self._write(
            rows,
            actor=actor,
            file=file.name,
            sha256=hashlib.sha256(data).hexdigest(),
            scheme=scheme,
            skipped=len(found) - first_problem,
        )
        self._geoms_version = None
        log.info(
            "areas.imported",
            file=file.name,
            scheme=scheme,
            count=len(rows),
            skipped=len(found) - first_problem,
        )
        return len(rows)

    async def _write(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        actor: str,
        file: str,
        sha256: str,
        scheme: str,
        skipped: int,
    ) -> None:
        with database_errors(f"cannot import the areas of {file}"):
            async with self.engine.begin() as conn:
                for start in range(0, len(rows), _WRITE_BATCH):
                    chunk = rows[start : start + _WRITE_BATCH]
                    codes = [r["code"] for r in chunk]
                    await conn.execute(delete(areas_table).where(areas_table.c.code.in_(codes)))
                    await conn.execute(areas_table.insert(), list(chunk))
                await audit.append(
                    conn,
                    actor=actor,
                    action="areas.imported",
                    subject=f"areas:{scheme}",
                    data={
                        "file": file,
                        "sha256": sha256,
                        "scheme": scheme,
                        "count": len(rows),
                        "skipped": skipped,
                    },
                )

    async def get(self, code: str) -> Area | None:
        """The area with ``code`` (scheme case-insensitive), or None."""
        try:
            scheme, value = split_code(code)
        except ValueError:
            return None
        query = select(areas_table).where(areas_table.c.code == f"{scheme}:{value}")
        with database_errors(f"cannot read area {code}"):
            async with read_only(self.engine) as conn:
                row = (await conn.execute(query)).first()
        return _area(row) if row is not None else None

    async def search(self, text: str, *, offset: int = 0, limit: int = 8) -> tuple[list[Area], int]:
        """Areas whose name holds every word of ``text`` (accents and case ignored); and the total.

        Names that start with the text come first, then by name: the order a
        paginated keyboard shows. A text of digits also finds codes starting
        with it (``09015``). An empty text lists the whole catalogue.
        """
        folded = fold_name(text)
        conditions = [areas_table.c.name_folded.contains(word) for word in folded.split()]
        condition: Any = and_(*conditions) if conditions else None
        if folded.isdigit():
            condition = or_(condition, areas_table.c.value.startswith(folded))
        count_query = select(func.count()).select_from(areas_table)
        query = select(areas_table)
        if condition is not None:
            count_query = count_query.where(condition)
            query = query.where(condition)
        starts = case((areas_table.c.name_folded.startswith(folded), 0), else_=1)
        query = (
            query.order_by(starts, areas_table.c.name_folded, areas_table.c.code)
            .offset(max(offset, 0))
            .limit(max(limit, 0))
        )
        with database_errors("cannot search the areas"):
            async with read_only(self.engine) as conn:
                total = int((await conn.execute(count_query)).scalar_one())
                rows = (await conn.execute(query)).all()
        return [_area(row) for row in rows], total

    async def containing(self, lat: float, lon: float) -> list[Area]:
        """Areas that hold the point (boundaries included), the smallest first.

        The smallest first, so that a shared location reads as "Cuauhtémoc"
        before "Ciudad de México" when the catalogue holds both.
        """
        c = areas_table.c
        query = select(areas_table).where(
            and_(c.min_lat <= lat, c.max_lat >= lat, c.min_lon <= lon, c.max_lon >= lon)
        )
        with database_errors("cannot find the areas of a point"):
            async with read_only(self.engine) as conn:
                rows = (await conn.execute(query)).all()
        found = [
            area for area in map(_area, rows) if shapely.intersects_xy(area.geometry, lon, lat)
        ]
        return sorted(found, key=lambda a: (a.geometry.area, a.code))

    async def all_codes(self) -> list[str]:
        """Every code in the catalogue, sorted."""
        with database_errors("cannot list the areas"):
            async with read_only(self.engine) as conn:
                rows = await conn.execute(select(areas_table.c.code).order_by(areas_table.c.code))
                return [str(code) for code in rows.scalars()]

    async def geometries(self) -> Mapping[str, BaseGeometry]:
        """Every code with its geometry, for targeting; cached until the catalogue changes.

        Whether it changed is one cheap query (row count and latest import
        time), so an import by another process is seen at the next alert.
        """
        c = areas_table.c
        with database_errors("cannot read the area geometries"):
            async with read_only(self.engine) as conn:
                count, latest = (
                    await conn.execute(select(func.count(), func.max(c.imported_at)))
                ).one()
                version = (int(count), latest)
                if version == self._geoms_version:
                    return self._geoms
                rows = (await conn.execute(select(c.code, c.geometry))).all()
        codes = [str(row.code) for row in rows]
        geoms: list[BaseGeometry] = (
            list(shapely.from_wkb([row.geometry for row in rows])) if rows else []
        )
        self._geoms = dict(zip(codes, geoms, strict=True))
        self._geoms_version = version
        return self._geoms


def codes_in(codes: Iterable[str]) -> list[tuple[str, str]]:
    """(scheme, value) of each well-formed code; malformed ones are skipped."""
    pairs: list[tuple[str, str]] = []
    for code in codes:
        try:
            pairs.append(split_code(code))
        except ValueError:
            continue
    return pairs
