"""Small, dependency-free geometry for deciding whether two alert areas touch.

Routing needs one question answered: does an alert's area (CAP polygons and
circles) intersect a named area, or another alert's area? It does not need
areas, buffers or projections a GIS would offer, so this module keeps to what
that question requires and says where the answer is approximate.

The method:

* Polygons are rings of ``(lat, lon)`` points, as CAP writes them. Whether
  two rings intersect, or a point lies inside one, is decided in plain
  ``(lon, lat)`` degrees: intersection and containment do not change under the
  affine stretch an equirectangular projection applies, so no projection is
  needed for them. A ring counts as intersecting when any edges cross or touch,
  or when one ring lies wholly inside the other; boundaries belong to the area.
* Circles need distances. A circle is tested against a ring on a local
  equirectangular projection centred on the circle (``x = R·Δlon·cos(lat₀)``,
  ``y = R·Δlat``, R the mean Earth radius): the circle intersects when its
  centre lies inside the ring or some edge comes within the radius. Two circles
  intersect when the great-circle distance between their centres is at most
  the sum of the radii.
* Longitudes are unwrapped edge by edge (no step is taken longer than 180°),
  so a ring that crosses the antimeridian near Fiji or Alaska stays one ring.

Limits, on purpose: the equirectangular distance is accurate to well under 1 %
within a few hundred kilometres of the circle's centre, which covers the areas
alerts are drawn for, and degrades towards the poles; rings around a pole and
self-intersecting rings are not handled specially (the even-odd rule decides).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

from alertcast.domain import Circle, Point, Polygon

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), the R of the distances computed here."""

Shape = Polygon | Circle
"""An area part: a CAP ``<polygon>`` or ``<circle>``."""

_XY = tuple[float, float]


def unwrap_lon(lon: float, reference: float) -> float:
    """``lon`` moved by whole turns to lie within 180° of ``reference``."""
    return reference + (lon - reference + 180.0) % 360.0 - 180.0


def _planar_ring(points: Sequence[Point], reference_lon: float) -> list[_XY]:
    """The ring as ``(x=lon, y=lat)`` with longitudes unwrapped step by step."""
    ring: list[_XY] = []
    previous = reference_lon
    for lat, lon in points:
        x = unwrap_lon(lon, previous)
        ring.append((x, lat))
        previous = x
    return ring


def _edges(ring: Sequence[_XY]) -> list[tuple[_XY, _XY]]:
    """Every edge of the ring, closing it when the last point is not the first."""
    if not ring:
        return []
    if len(ring) == 1:
        return [(ring[0], ring[0])]
    closed = list(ring) if ring[0] == ring[-1] else [*ring, ring[0]]
    return list(itertools.pairwise(closed))


def _bbox(ring: Sequence[_XY]) -> tuple[float, float, float, float]:
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    return min(xs), min(ys), max(xs), max(ys)


def _boxes_overlap(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float]
) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _orientation(a: _XY, b: _XY, c: _XY) -> float:
    """Twice the signed area of the triangle abc: > 0 left turn, < 0 right turn, 0 collinear."""
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: _XY, b: _XY, p: _XY) -> bool:
    """True when ``p``, known to be collinear with ab, lies between a and b."""
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def segments_intersect(p1: _XY, p2: _XY, q1: _XY, q2: _XY) -> bool:
    """True when segments p1p2 and q1q2 cross or touch (shared end points included)."""
    d1 = _orientation(q1, q2, p1)
    d2 = _orientation(q1, q2, p2)
    d3 = _orientation(p1, p2, q1)
    d4 = _orientation(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and _on_segment(q1, q2, p1))
        or (d2 == 0 and _on_segment(q1, q2, p2))
        or (d3 == 0 and _on_segment(p1, p2, q1))
        or (d4 == 0 and _on_segment(p1, p2, q2))
    )


def _inside(ring: Sequence[_XY], point: _XY) -> bool:
    """Even-odd point-in-ring test; a point on the boundary is inside."""
    x, y = point
    inside = False
    for a, b in _edges(ring):
        if _orientation(a, b, point) == 0 and _on_segment(a, b, point):
            return True
        if (a[1] > y) != (b[1] > y):
            crossing = a[0] + (y - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            if x < crossing:
                inside = not inside
    return inside


def point_in_polygon(point: Point, polygon: Polygon) -> bool:
    """True when ``point`` (lat, lon) lies inside or on the boundary of ``polygon``."""
    if not polygon.points:
        return False
    lat, lon = point
    ring = _planar_ring(polygon.points, lon)
    return _inside(ring, (lon, lat))


def polygons_intersect(a: Polygon, b: Polygon) -> bool:
    """True when the two polygons share at least one point (touching counts)."""
    if not a.points or not b.points:
        return False
    reference = a.points[0][1]
    ring_a = _planar_ring(a.points, reference)
    ring_b = _planar_ring(b.points, reference)
    box_a, box_b = _bbox(ring_a), _bbox(ring_b)
    if not _boxes_overlap(box_a, box_b):
        return False
    # Only edges inside the other ring's box can cross it: on a 40,000-point
    # national outline against a city, this leaves a handful of edges to test.
    edges_a = [e for e in _edges(ring_a) if _boxes_overlap(_bbox(e), box_b)]
    edges_b = [e for e in _edges(ring_b) if _boxes_overlap(_bbox(e), box_a)]
    for p1, p2 in edges_a:
        box = _bbox((p1, p2))
        for q1, q2 in edges_b:
            if _boxes_overlap(box, _bbox((q1, q2))) and segments_intersect(p1, p2, q1, q2):
                return True
    return _inside(ring_b, ring_a[0]) or _inside(ring_a, ring_b[0])


def _project(point: Point, centre: Point) -> _XY:
    """Equirectangular projection around ``centre``, in kilometres."""
    lat0, lon0 = centre
    k = math.pi / 180.0 * EARTH_RADIUS_KM
    x = (unwrap_lon(point[1], lon0) - lon0) * math.cos(math.radians(lat0)) * k
    y = (point[0] - lat0) * k
    return x, y


def _distance_to_segment(p: _XY, a: _XY, b: _XY) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    if length2 == 0:
        return math.hypot(p[0] - a[0], p[1] - a[1])
    t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2))
    return math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy))


def circle_intersects_polygon(circle: Circle, polygon: Polygon) -> bool:
    """True when the circle and the polygon share at least one point."""
    if not polygon.points:
        return False
    centre = (circle.lat, circle.lon)
    ring = [_project(p, centre) for p in polygon.points]
    # _project unwraps every vertex around the centre, which keeps rings near
    # the antimeridian whole as long as they are smaller than a hemisphere.
    origin = (0.0, 0.0)
    if _inside(ring, origin):
        return True
    radius = max(circle.radius_km, 0.0)
    for a, b in _edges(ring):
        x0, y0, x1, y1 = _bbox((a, b))
        if x0 - radius > 0 or x1 + radius < 0 or y0 - radius > 0 or y1 + radius < 0:
            continue
        if _distance_to_segment(origin, a, b) <= radius:
            return True
    return False


def great_circle_km(a: Point, b: Point) -> float:
    """Haversine distance between two (lat, lon) points, in kilometres."""
    lat1, lon1 = map(math.radians, a)
    lat2, lon2 = map(math.radians, b)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def circles_intersect(a: Circle, b: Circle) -> bool:
    """True when the two circles share at least one point."""
    distance = great_circle_km((a.lat, a.lon), (b.lat, b.lon))
    return distance <= max(a.radius_km, 0.0) + max(b.radius_km, 0.0)


def shapes_intersect(a: Shape, b: Shape) -> bool:
    """True when two area parts share at least one point."""
    if isinstance(a, Polygon):
        if isinstance(b, Polygon):
            return polygons_intersect(a, b)
        return circle_intersects_polygon(b, a)
    if isinstance(b, Polygon):
        return circle_intersects_polygon(a, b)
    return circles_intersect(a, b)


def any_intersect(first: Iterable[Shape], second: Iterable[Shape]) -> bool:
    """True when some part of ``first`` intersects some part of ``second``."""
    others = list(second)
    return any(shapes_intersect(a, b) for a in first for b in others)
