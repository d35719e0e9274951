"""The compose form's reading, and the map's shapes, without a server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alertcast.alert_json import alert_from_json
from alertcast.domain import Area, Circle, MsgType, NamedValue, Polygon, Status
from alertcast.web.console.compose_form import (
    DEFAULTS,
    initial_values,
    parse_geocodes,
    parse_polygon,
    read_form,
)
from alertcast.web.console.map_data import MapAlert, map_data
from tests.builders import quake_alert

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _form(**overrides: str) -> dict[str, str]:
    form = dict(DEFAULTS)
    form.update(
        event="Sismo",
        headline="Sismo fuerte",
        description="Se registró un sismo.",
        area_desc="Ciudad de México",
    )
    form.update(overrides)
    return form


def test_a_complete_form_is_an_alert_the_desk_can_read() -> None:
    result = read_form(
        _form(area_geocode="inegi_cvegeo:09, NUTS:es3", instruction=""),
        str,
        sender="pc@example.mx",
        now=NOW,
    )
    assert result.errors == {}
    assert result.alert_json is not None
    alert = alert_from_json(result.alert_json, default_identifier="x", default_sent=NOW)
    assert alert.sender == "pc@example.mx"
    assert alert.status is Status.ACTUAL and alert.msg_type is MsgType.ALERT
    info = alert.infos[0]
    assert info.expires == NOW + timedelta(hours=6)
    assert info.instruction is None
    assert info.areas[0].geocodes == (
        NamedValue("INEGI_CVEGEO", "09"),
        NamedValue("NUTS", "ES3"),
    )


def test_missing_and_wrong_fields_are_named() -> None:
    result = read_form(
        _form(headline="", severity="Terrible", expires_hours="0", area_polygon="1,2 3,4"),
        str,
        sender="pc@example.mx",
        now=NOW,
    )
    assert result.alert_json is None
    assert set(result.errors) == {"headline", "severity", "expires_hours", "area_polygon"}
    assert result.values["severity"] == "Terrible"  # shown again as typed


def test_polygons_are_closed_and_checked() -> None:
    ring = parse_polygon("19.5,-99.2 19.6,-99.1 19.4,-99.0")
    assert ring[0] == ring[-1] and len(ring) == 4
    assert parse_polygon("1,1 2,2 3,1 1,1") == [[1, 1], [2, 2], [3, 1], [1, 1]]
    for bad in ("1,1 2,2", "91,0 1,1 2,2", "1;1 2,2 3,3", "a,b c,d e,f", "nan,1 1,1 2,2"):
        with pytest.raises(ValueError):
            parse_polygon(bad)


def test_geocodes_need_a_scheme() -> None:
    assert parse_geocodes("") == []
    with pytest.raises(ValueError):
        parse_geocodes("09015")


def test_a_preset_fills_category_and_event_in_the_alert_language() -> None:
    values = initial_values({"template": "weather", "language": "en", "status": "Exercise"})
    assert (values["category"], values["event"], values["status"]) == (
        "Met",
        "Severe weather",
        "Exercise",
    )
    assert initial_values({"template": "nope", "status": "Real"}) == dict(DEFAULTS)


async def test_map_features_follow_geojson_order() -> None:
    area = Area(
        "Zona",
        polygons=(Polygon(((19.0, -99.0), (19.5, -99.0), (19.5, -98.5), (19.0, -99.0))),),
        circles=(Circle(19.4, -99.1, 2.5),),
        geocodes=(NamedValue("INEGI_CVEGEO", "09"),),
    )
    alert = quake_alert("MAP-1", sender="pc@example.mx", sent=NOW)
    info = alert.infos[0]
    alert = replace(alert, infos=(replace(info, areas=(area,)),))
    data = await map_data([MapAlert(7, alert, "Sismo")], None)
    polygon, circle = data.features
    assert polygon["geometry"]["coordinates"][0][0] == [-99.0, 19.0]
    assert circle["geometry"] == {"type": "Point", "coordinates": [-99.1, 19.4]}
    assert circle["properties"]["radius_m"] == 2500.0
    assert polygon["properties"]["url"] == "/console/alerts/7"
    assert data.unresolved == ["INEGI_CVEGEO:09 (Zona)"]
