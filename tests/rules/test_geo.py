"""The small geometry routing relies on: containment, crossing, circles, the antimeridian."""

from __future__ import annotations

import pytest

from alertcast.domain import Circle, Polygon
from alertcast.geo import (
    any_intersect,
    circle_intersects_polygon,
    circles_intersect,
    great_circle_km,
    point_in_polygon,
    polygons_intersect,
    segments_intersect,
    unwrap_lon,
)
from tests.rules.support import CDMX_SQUARE, GUERRERO_COAST

SQUARE = Polygon(((0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0), (0.0, 0.0)))


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((0.5, 0.5), True),
        ((0.0, 0.5), True),  # on an edge: boundaries belong to the area
        ((1.0, 1.0), True),  # on a vertex
        ((1.5, 0.5), False),
        ((-0.1, -0.1), False),
    ],
)
def test_point_in_polygon(point: tuple[float, float], inside: bool) -> None:
    assert point_in_polygon(point, SQUARE) is inside


def test_a_concave_polygon_leaves_its_notch_outside() -> None:
    # A "U": the notch between the arms is outside.
    u_shape = Polygon(((0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3), (0, 0)))
    assert point_in_polygon((0.5, 2.0), u_shape)  # lat 0.5, lon 2: bottom bar
    assert not point_in_polygon((1.5, 2.0), u_shape)  # lat 1.5, lon 2: in the notch


def test_segments_cross_touch_or_miss() -> None:
    assert segments_intersect((0, 0), (2, 2), (0, 2), (2, 0))  # an X
    assert segments_intersect((0, 0), (1, 1), (1, 1), (2, 0))  # share an end point
    assert segments_intersect((0, 0), (2, 0), (1, 0), (3, 0))  # collinear overlap
    assert not segments_intersect((0, 0), (1, 0), (2, 0), (3, 0))  # collinear apart
    assert not segments_intersect((0, 0), (1, 1), (0, 1), (0.4, 0.6))


def test_polygons_that_cross_contain_touch_or_miss() -> None:
    crossing = Polygon(((0.5, 0.5), (0.5, 1.5), (1.5, 1.5), (1.5, 0.5)))
    inner = Polygon(((0.2, 0.2), (0.2, 0.4), (0.4, 0.4), (0.4, 0.2)))
    touching = Polygon(((1.0, 0.0), (1.0, 1.0), (2.0, 1.0), (2.0, 0.0)))
    apart = Polygon(((5.0, 5.0), (5.0, 6.0), (6.0, 6.0), (6.0, 5.0)))
    assert polygons_intersect(SQUARE, crossing)
    assert polygons_intersect(SQUARE, inner) and polygons_intersect(inner, SQUARE)
    assert polygons_intersect(SQUARE, touching)
    assert not polygons_intersect(SQUARE, apart)
    assert not polygons_intersect(CDMX_SQUARE, GUERRERO_COAST)


def test_a_polygon_across_the_antimeridian_stays_one_area() -> None:
    fiji = Polygon(((-16.0, 177.0), (-16.0, -178.0), (-19.0, -178.0), (-19.0, 177.0)))
    assert point_in_polygon((-17.5, 179.9), fiji)
    assert point_in_polygon((-17.5, -179.5), fiji)
    assert not point_in_polygon((-17.5, 170.0), fiji)
    east_of_the_line = Polygon(((-17.0, -179.5), (-17.0, -179.0), (-18.0, -179.0)))
    assert polygons_intersect(fiji, east_of_the_line)
    assert unwrap_lon(-179.0, 179.0) == pytest.approx(181.0)


def test_circle_and_polygon() -> None:
    # Mexico City's centre is inside the box; Cuernavaca (about 60 km south) is not.
    centre = Circle(19.4326, -99.1332, 1.0)
    cuernavaca = Circle(18.9242, -99.2216, 5.0)
    assert circle_intersects_polygon(centre, CDMX_SQUARE)
    assert not circle_intersects_polygon(cuernavaca, CDMX_SQUARE)
    # The box's south edge is at 19.0, about 8.4 km north of Cuernavaca.
    assert circle_intersects_polygon(Circle(18.9242, -99.2216, 10.0), CDMX_SQUARE)
    # A big circle around a small polygon contains it entirely.
    assert circle_intersects_polygon(Circle(19.3, -99.15, 500.0), CDMX_SQUARE)


def test_circles_meet_when_the_centres_are_close_enough() -> None:
    mexico_city = (19.4326, -99.1332)
    puebla = (19.0414, -98.2063)
    distance = great_circle_km(mexico_city, puebla)
    assert 100 < distance < 110  # about 105 km
    assert circles_intersect(Circle(*mexico_city, 60.0), Circle(*puebla, 50.0))
    assert not circles_intersect(Circle(*mexico_city, 40.0), Circle(*puebla, 40.0))


def test_any_intersect_over_mixed_shapes() -> None:
    assert any_intersect([GUERRERO_COAST, Circle(19.4, -99.1, 1.0)], [CDMX_SQUARE])
    assert not any_intersect([GUERRERO_COAST], [CDMX_SQUARE, Circle(25.0, -100.0, 10.0)])
    assert not any_intersect([], [CDMX_SQUARE])


def test_a_huge_polygon_is_tested_quickly_and_correctly() -> None:
    # 40,000 points on a circle-like outline, as national outlines come.
    import math

    points = tuple(
        (
            19.0 + 3.0 * math.sin(t / 40000 * 2 * math.pi),
            -99.0 + 3.0 * math.cos(t / 40000 * 2 * math.pi),
        )
        for t in range(40000)
    )
    outline = Polygon((*points, points[0]))
    assert polygons_intersect(outline, CDMX_SQUARE)  # inside, no edge crossing
    assert not polygons_intersect(outline, Polygon(((40.0, 0.0), (40.0, 1.0), (41.0, 1.0))))
