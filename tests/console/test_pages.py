"""Every page in Spanish and English, the dashboard's map data, the audit and subscriber pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from alertcast.areas import AreaCatalogue
from alertcast.officers.services import OfficeServices
from alertcast.store.tables import audit_log
from tests.console.conftest import Console, by_id, compose, has_id, login, make_app, page

PAGES = (
    "/console/",
    "/console/compose",
    "/console/queue",
    "/console/audit",
    "/console/subscribers",
    "/console/login",
)
WORDS = {
    "/console/": ("Alertas vigentes", "Alerts in force"),
    "/console/compose": ("Redactar una alerta", "Compose an alert"),
    "/console/queue": ("Pendientes de aprobación", "Approval queue"),
    "/console/audit": ("Bitácora de auditoría", "Audit trail"),
    "/console/subscribers": ("Suscriptores", "Subscribers"),
    "/console/login": ("Contraseña", "Password"),
}


@pytest.mark.parametrize("path", PAGES)
async def test_pages_render_in_spanish_and_english(console: Console, path: str) -> None:
    await login(console.client, "ana")
    spanish_word, english_word = WORDS[path]
    spanish = await console.client.get(f"{path}?lang=es")
    assert spanish.status == 200
    text = await spanish.text()
    assert spanish_word in text and page(text).get("lang") == "es"
    english = await console.client.get(f"{path}?lang=en")
    assert english.status == 200
    text = await english.text()
    assert english_word in text and page(text).get("lang") == "en"
    assert spanish_word not in text or spanish_word == english_word
    remembered = await console.client.get(path)  # the cookie keeps the last choice
    assert page(await remembered.text()).get("lang") == "en"


async def test_language_comes_from_accept_language_then_defaults_to_spanish(
    console: Console,
) -> None:
    response = await console.client.get(
        "/console/login", headers={"Accept-Language": "fr;q=1, en-GB;q=0.8, es;q=0.5"}
    )
    assert page(await response.text()).get("lang") == "en"
    response = await console.client.get("/console/login", headers={"Accept-Language": "de"})
    assert page(await response.text()).get("lang") == "es"


async def test_pages_carry_a_strict_content_security_policy(console: Console) -> None:
    await login(console.client, "ana")
    for path in PAGES:
        response = await console.client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe" not in policy
        assert "img-src 'self' data: https://tiles.example.org" in policy
        assert response.headers["Cache-Control"] == "no-store"
        doc = page(await response.text())
        for script in doc.xpath("//script"):
            assert script.get("src") or script.get("type") == "application/json", path
        for form in doc.xpath("//form[@method='post']"):
            assert form.xpath(".//input[@name='csrf_token']/@value")[0], path


async def test_the_dashboard_maps_polygons_and_catalogue_areas(
    console: Console, tmp_path: Path
) -> None:
    geojson = tmp_path / "cdmx.geojson"
    geojson.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"CVEGEO": "09", "NOMGEO": "Ciudad de México"},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [
                                [
                                    [-99.36, 19.05],
                                    [-98.94, 19.05],
                                    [-98.94, 19.59],
                                    [-99.36, 19.59],
                                    [-99.36, 19.05],
                                ]
                            ],
                        },
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    await AreaCatalogue(console.services.engine).import_geojson(
        geojson, scheme="INEGI_CVEGEO", code_field="CVEGEO", name_field="NOMGEO", actor="t"
    )
    csrf = await login(console.client, "olga")
    alert_id = await compose(console.client, csrf, area_geocode="INEGI_CVEGEO:09 INEGI_CVEGEO:15")
    await console.client.post("/console/logout", data={"csrf_token": csrf})
    csrf = await login(console.client, "ana")
    await console.client.post(f"/console/alerts/{alert_id}/approve", data={"csrf_token": csrf})

    text = await (await console.client.get("/console/")).text()
    data = json.loads(by_id(text, "map-data").text_content())
    kinds = sorted(f["geometry"]["type"] for f in data["features"])
    assert kinds == ["Polygon", "Polygon"]  # the drawn polygon and the catalogue's shape
    assert {f["properties"]["alert_id"] for f in data["features"]} == {alert_id}
    assert "INEGI_CVEGEO:15" in text  # not in the catalogue: listed, not drawn
    map_element = by_id(text, "map")
    assert map_element.get("data-tile-url") == "https://tiles.example.org/{z}/{x}/{y}.png"


async def test_without_a_tile_url_the_map_has_no_tile_source(services: OfficeServices) -> None:
    async with TestClient(TestServer(make_app(services, tile_url=None))) as client:
        await login(client, "vera")
        response = await client.get("/console/")
        assert by_id(await response.text(), "map").get("data-tile-url") == ""
        assert "img-src 'self' data:;" in response.headers["Content-Security-Policy"]


async def test_the_audit_page_shows_records_and_a_broken_chain(console: Console) -> None:
    await login(console.client, "vera")
    text = await (await console.client.get("/console/audit?lang=en")).text()
    chain = by_id(text, "audit-chain")
    assert chain.get("data-chain") == "intact" and "intact" in chain.text_content()
    assert "session.started" in by_id(text, "audit-records").text_content()

    async with console.services.engine.begin() as conn:
        await conn.execute(update(audit_log).where(audit_log.c.seq == 1).values(actor="x"))
    text = await (await console.client.get("/console/audit?lang=en")).text()
    chain = by_id(text, "audit-chain")
    assert chain.get("data-chain") == "broken" and "record 1" in chain.text_content()


async def test_the_subscriber_page_counts_per_channel(console: Console) -> None:
    store = console.services.subscribers
    assert store is not None
    for number in ("+525512345678", "+525512345679"):
        await store.subscribe("sms", number, consent_text="sí", source="test")
    await login(console.client, "vera")
    text = await (await console.client.get("/console/subscribers")).text()
    assert by_id(text, "subscriber-total").text_content() == "2"
    row = page(text).xpath('//tr[@data-channel="sms"]/td[@class="count"]')
    assert row[0].text_content() == "2"


async def test_the_dashboard_lists_feeds_and_channels(console: Console) -> None:
    await login(console.client, "vera")
    text = await (await console.client.get("/console/?lang=en")).text()
    channels = by_id(text, "channels").text_content()
    assert "console" in channels and "drills" in channels
    assert has_id(text, "feed-health")


async def test_the_preview_button_renders_the_preview_without_scripts(console: Console) -> None:
    csrf = await login(console.client, "olga")
    form: dict[str, Any] = {
        "csrf_token": csrf,
        "status": "Actual",
        "category": "Geo",
        "event": "Sismo",
        "urgency": "Immediate",
        "severity": "Severe",
        "certainty": "Observed",
        "headline": "Sismo fuerte",
        "description": "Se registró un sismo.",
        "area_desc": "Ciudad de México",
        "language": "es",
        "expires_hours": "6",
        "action": "preview",
    }
    response = await console.client.post("/console/compose", data=form)
    assert response.status == 200
    text = await response.text()
    routes = page(text).xpath('//*[@id="preview"]//*[contains(@class, "preview-route")]')
    assert [r.get("data-channel") for r in routes] == ["console"]
    rendering = routes[0]
    assert (
        "Sismo fuerte"
        in rendering.xpath('.//*[contains(@class, "preview-text")]')[0].text_content()
    )
    for counter in ("preview-length", "preview-segments", "preview-audience", "preview-eta"):
        assert rendering.xpath(f'.//*[contains(@class, "{counter}")]'), counter
    assert int(rendering.xpath('.//*[contains(@class, "preview-segments")]')[0].text_content()) >= 1
    assert await console.services.desk.list() == []  # a preview stores nothing
