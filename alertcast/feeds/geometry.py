"""Road geometry to CAP areas, without a GIS library.

CAP areas are polygons and circles; road feeds describe points and lines.
The conversions here are deliberately simple, always produce geometry CAP
accepts (closed rings of at least four points, coordinates in range) and
never need shapely:

* a point becomes a circle of :data:`POINT_RADIUS_KM` (0.1 km): the place of
  an incident, with room for the usual error of a GPS fix or a geocoder;
* a line becomes a *corridor*: one thin rectangle per segment, each
  :data:`LINE_HALF_WIDTH_KM` (0.1 km) either side of the road and reaching
  as far past both ends, so consecutive rectangles overlap at the bends.
  Every rectangle is convex, so no polygon ever crosses itself, which a
  single offset outline of a winding road easily would. The line is first
  simplified (Douglas-Peucker) to at most :data:`MAX_SEGMENTS` segments so a
  road traced with hundreds of points does not become hundreds of polygons;
  the tolerance grows from 10 m until it fits, and stays far below the
  corridor's width for ordinary roads.

Distances use a local flat-earth approximation around each segment, which
is exact to well under a metre at these scales. Lines that cross the
antimeridian are not handled (no road feed here does).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from alertcast.domain import Circle, Point, Polygon

POINT_RADIUS_KM = 0.1
LINE_HALF_WIDTH_KM = 0.1
MAX_SEGMENTS = 50
_KM_PER_DEGREE_LAT = 110.574
_KM_PER_DEGREE_LON_AT_EQUATOR = 111.320
_PRECISION = 6
"""Decimal places kept: 10⁻⁶ degree is about 0.1 m."""


def check_point(lat: float, lon: float) -> Point:
    """``(lat, lon)`` if both are finite and in range; else ValueError saying which is wrong."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"coordinate ({lat}, {lon}) is not a number")
    if not -90 <= lat <= 90:
        raise ValueError(f"latitude {lat} is outside -90..90 (are latitude and longitude swapped?)")
    if not -180 <= lon <= 180:
        raise ValueError(f"longitude {lon} is outside -180..180")
    return (lat, lon)


def point_circle(point: Point, radius_km: float = POINT_RADIUS_KM) -> Circle:
    lat, lon = check_point(*point)
    return Circle(lat=lat, lon=lon, radius_km=radius_km)


def ring(points: Sequence[Point]) -> Polygon:
    """A polygon from a ring of points, closed if it was not; ValueError if too small."""
    checked = [check_point(lat, lon) for lat, lon in points]
    if checked and checked[0] != checked[-1]:
        checked.append(checked[0])
    if len(checked) < 4:
        raise ValueError(f"a polygon needs at least 3 distinct corners, not {len(checked) - 1}")
    return Polygon(points=tuple(checked))


def line_corridor(
    points: Sequence[Point],
    half_width_km: float = LINE_HALF_WIDTH_KM,
    max_segments: int = MAX_SEGMENTS,
) -> tuple[tuple[Polygon, ...], tuple[Circle, ...]]:
    """The area along a line: rectangles per segment, or a circle if the line is one point."""
    checked = [check_point(lat, lon) for lat, lon in points]
    distinct = [p for i, p in enumerate(checked) if i == 0 or p != checked[i - 1]]
    if not distinct:
        raise ValueError("the line has no points")
    if len(distinct) == 1:
        return (), (point_circle(distinct[0], half_width_km),)
    simplified = simplify(distinct, max_segments)
    polygons = tuple(
        _segment_rectangle(a, b, half_width_km) for a, b in itertools.pairwise(simplified)
    )
    return polygons, ()


def simplify(points: Sequence[Point], max_segments: int = MAX_SEGMENTS) -> list[Point]:
    """Douglas-Peucker, loosening from 10 m until the line has at most ``max_segments``."""
    tolerance_km = 0.01
    result = list(points)
    while len(result) - 1 > max_segments:
        result = _douglas_peucker(points, tolerance_km)
        tolerance_km *= 2
    return result


def _douglas_peucker(points: Sequence[Point], tolerance_km: float) -> list[Point]:
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:  # iterative: a long line must not exhaust the recursion limit
        first, last = stack.pop()
        farthest, distance = first, 0.0
        for index in range(first + 1, last):
            d = _distance_to_segment_km(points[index], points[first], points[last])
            if d > distance:
                farthest, distance = index, d
        if distance > tolerance_km:
            keep[farthest] = True
            stack.append((first, farthest))
            stack.append((farthest, last))
    return [point for point, kept in zip(points, keep, strict=True) if kept]


def _to_km(point: Point, origin: Point) -> tuple[float, float]:
    scale = _KM_PER_DEGREE_LON_AT_EQUATOR * math.cos(math.radians(origin[0]))
    return ((point[1] - origin[1]) * scale, (point[0] - origin[0]) * _KM_PER_DEGREE_LAT)


def _from_km(x: float, y: float, origin: Point) -> Point:
    scale = _KM_PER_DEGREE_LON_AT_EQUATOR * math.cos(math.radians(origin[0]))
    lat = origin[0] + y / _KM_PER_DEGREE_LAT
    lon = origin[1] + (x / scale if scale else 0.0)
    lat = min(90.0, max(-90.0, lat))
    lon = min(180.0, max(-180.0, lon))
    return (round(lat, _PRECISION), round(lon, _PRECISION))


def _distance_to_segment_km(point: Point, a: Point, b: Point) -> float:
    px, py = _to_km(point, a)
    bx, by = _to_km(b, a)
    length_sq = bx * bx + by * by
    t = 0.0 if length_sq == 0 else max(0.0, min(1.0, (px * bx + py * by) / length_sq))
    return math.hypot(px - t * bx, py - t * by)


def _segment_rectangle(a: Point, b: Point, half_width_km: float) -> Polygon:
    bx, by = _to_km(b, a)
    length = math.hypot(bx, by)
    ux, uy = (bx / length, by / length) if length else (1.0, 0.0)
    nx, ny = -uy * half_width_km, ux * half_width_km
    sx, sy = -ux * half_width_km, -uy * half_width_km  # start, pulled back past a
    ex, ey = bx + ux * half_width_km, by + uy * half_width_km  # end, pushed past b
    corners = [
        _from_km(sx + nx, sy + ny, a),
        _from_km(ex + nx, ey + ny, a),
        _from_km(ex - nx, ey - ny, a),
        _from_km(sx - nx, sy - ny, a),
    ]
    corners.append(corners[0])
    return Polygon(points=tuple(corners))
