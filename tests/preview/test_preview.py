"""The preview: the texts, audiences, ETA and cost each routed channel would have, read-only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit, lifecycle
from alertcast.config import load_config
from alertcast.dispatch.planner import Planner
from alertcast.dispatch.progress import channel_rate_limits
from alertcast.domain import Alert, Area, Category, MsgType, Scope, Severity, Status
from alertcast.preview import Preview, Previewer, RoutePreview
from alertcast.preview_audience import AudienceCounter
from alertcast.rules_model import LabelMatcher
from alertcast.sms import count_sms
from alertcast.store.silences import SilenceRepository
from alertcast.store.tables import deliveries, dispatch_decisions, dispatch_routes
from tests.preview.support import (
    PER_SEGMENT,
    SENDER,
    SMS_RATE,
    TELEGRAM_RATE,
    CountedAudience,
    alert,
    info,
    make_config,
    previewer,
)

ENCODING_NAMES = {"gsm7": "GSM-7", "ucs2": "UCS-2"}

LONG_INSTRUCTION = (
    "Suba a la parte alta de su colonia, lleve documentos y medicinas, siga las rutas de"
    " evacuación señaladas y no regrese a su casa hasta que Protección Civil lo indique."
    " Si ve a alguien en peligro llame al 911 y espere a los equipos de rescate en un lugar"
    " seguro, lejos de ríos, barrancas y postes de luz."
)


def _route(preview: Preview, channel: str) -> RoutePreview:
    matches = [r for r in preview.routes if r.channel == channel]
    assert len(matches) == 1, [r.channel for r in preview.routes]
    return matches[0]


async def test_an_sms_route_shows_segments_encoding_audience_eta_and_cost(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    audience = CountedAudience({"es-MX": 40})
    preview = await previewer(engine, config, audience).preview(alert())

    sms = _route(preview, "sms")
    assert (sms.route, sms.kind, sms.approval, sms.held) == ("weather-sms", "sms", "one", None)
    [rendering] = sms.renderings
    assert rendering.language == "es-MX" and "montaña" in rendering.text
    expected = count_sms(rendering.text)
    assert expected.encoding == "gsm7"  # ñ and é are in the GSM 03.38 alphabet
    shown = rendering.to_json()
    assert shown["sms"] == {"segments": expected.segments, "encoding": "GSM-7"}
    assert shown["length"] == expected.units and shown["parts"] == 1
    assert sms.audience == 40
    assert sms.eta_s == pytest.approx(40 * expected.segments / SMS_RATE)
    assert sms.cost is not None
    assert sms.cost.to_json() == {
        "segments": expected.segments,
        "per_segment": PER_SEGMENT,
        "currency": "MXN",
        "total": pytest.approx(expected.segments * PER_SEGMENT * 40),
    }


async def test_an_accent_outside_gsm7_turns_the_sms_into_ucs2(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path)  # the channel does not transliterate
    accented = alert(info(headline="Lluvias fuertes en Álvaro Obregón", instruction="Aléjese."))
    preview = await previewer(engine, config, CountedAudience({"es-MX": 1})).preview(accented)

    [rendering] = _route(preview, "sms").renderings
    counted = count_sms(rendering.text)
    assert counted.encoding == "ucs2"
    assert rendering.to_json()["sms"] == {"segments": counted.segments, "encoding": "UCS-2"}


async def test_a_long_sms_counts_several_segments_in_its_cost_and_eta(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    long_alert = alert(info(instruction=LONG_INSTRUCTION))
    preview = await previewer(engine, config, CountedAudience({"es-MX": 25})).preview(long_alert)

    sms = _route(preview, "sms")
    [rendering] = sms.renderings
    segments = count_sms(rendering.text).segments
    assert segments >= 3
    shown = rendering.to_json()["sms"]
    assert shown is not None and shown["segments"] == segments
    assert sms.cost is not None and sms.cost.segments == segments
    assert sms.cost.total == pytest.approx(segments * PER_SEGMENT * 25)
    assert sms.eta_s == pytest.approx(25 * segments / SMS_RATE)  # one token per segment


async def test_a_telegram_channel_post_shows_its_html_and_parts(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path)  # the channel splits at 400 characters
    long_alert = alert(info(description=LONG_INSTRUCTION, instruction=LONG_INSTRUCTION))
    preview = await previewer(engine, config, CountedAudience({"es-MX": 5})).preview(long_alert)

    post = _route(preview, "canal")
    assert (post.kind, post.approval, post.held) == ("telegram", "auto", None)
    [rendering] = post.renderings
    assert "<b>Lluvias en la montaña</b>" in rendering.text
    assert rendering.parts >= 2
    assert rendering.to_json()["sms"] is None
    assert post.audience is None  # a channel's followers are not known to alertcast
    assert post.cost is None
    assert post.eta_s == pytest.approx(round(rendering.parts / TELEGRAM_RATE, 1))


async def test_an_alert_with_spanish_and_english_infos_is_rendered_in_both(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    english = info(
        language="en-US",
        headline="Heavy rain in the mountains",
        instruction="Do not cross flooded streets.",
    )
    audience = CountedAudience({"es-MX": 30, "en-US": 4})
    preview = await previewer(engine, config, audience).preview(alert(info(), english))

    sms = _route(preview, "sms")
    by_language = {r.language: r for r in sms.renderings}
    assert list(by_language) == ["es-MX", "en-US"]
    assert "montaña" in by_language["es-MX"].text
    assert "Heavy rain in the mountains" in by_language["en-US"].text
    assert sms.audience == 34
    es = count_sms(by_language["es-MX"].text).segments
    en = count_sms(by_language["en-US"].text).segments
    # each language's readers get their own text, at its own number of segments
    assert sms.eta_s == pytest.approx(round((30 * es + 4 * en) / SMS_RATE, 1))
    assert sms.cost is not None
    assert sms.cost.total == pytest.approx((30 * es + 4 * en) * PER_SEGMENT)
    # the channel post goes out once, in the route's (here: the channel's) language
    assert [r.language for r in _route(preview, "canal").renderings] == ["es-MX"]


async def test_an_exercise_is_flagged_and_every_text_carries_the_prefix(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    drill = alert(status=Status.EXERCISE)
    preview = await previewer(engine, config, CountedAudience({"es-MX": 3})).preview(drill)

    assert preview.exercise and preview.to_json()["exercise"] is True
    assert [r.route for r in preview.routes] == ["drills"]  # never the public routes
    [rendering] = preview.routes[0].renderings
    assert rendering.text.startswith("SIMULACRO: ")


async def test_a_route_needing_two_people_makes_two_approvals_required(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    quake = alert(
        info(categories=(Category.GEO,), event="Sismo", severity=Severity.EXTREME),
        identifier="PRE-QUAKE",
    )
    preview = await previewer(engine, config, CountedAudience({"es-MX": 2})).preview(quake)

    assert [(r.route, r.approval) for r in preview.routes] == [("quakes-reviewed", "two")]
    assert preview.approvals_required == 2
    weather = await previewer(engine, config, CountedAudience({})).preview(alert())
    assert weather.approvals_required == 1  # "one" on SMS, "auto" on the channel post


async def test_a_template_that_fails_is_a_problem_of_its_rendering_only(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(
        tmp_path, templates={"sms/weather.es.j2": "{{ headline | no_such_filter }}"}
    )
    preview = await previewer(engine, config, CountedAudience({"es-MX": 7})).preview(alert())

    sms = _route(preview, "sms")
    [rendering] = sms.renderings
    assert rendering.text == "" and rendering.parts == 0
    assert rendering.problems and "no_such_filter" in " ".join(rendering.problems)
    assert sms.audience == 7  # the rest of the route is still shown
    post = _route(preview, "canal")
    assert post.renderings[0].problems == () and post.renderings[0].text


async def test_a_preview_writes_nothing(engine: AsyncEngine, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    before = await audit.tail(engine, 10)
    await previewer(engine, config, CountedAudience({"es-MX": 5})).preview(alert())

    assert await audit.tail(engine, 10) == before
    async with engine.connect() as conn:
        for table in (dispatch_decisions, dispatch_routes, deliveries):
            assert await conn.scalar(select(func.count()).select_from(table)) == 0


async def test_the_json_has_the_documented_shape(engine: AsyncEngine, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    preview = await previewer(engine, config, CountedAudience({"es-MX": 5})).preview(alert())

    shown = preview.to_json()
    assert set(shown) == {"routes", "approvals_required", "exercise", "warnings"}
    for route in shown["routes"]:
        assert set(route) == {
            "route",
            "channel",
            "kind",
            "approval",
            "held",
            "audience",
            "eta_s",
            "cost",
            "renderings",
        }
        for rendering in route["renderings"]:
            assert set(rendering) == {"language", "text", "length", "parts", "sms", "problems"}


async def test_a_silenced_route_is_shown_held_and_needs_no_approval(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    now = datetime.now(UTC)
    await SilenceRepository(engine).add(
        matchers=[LabelMatcher.parse("channel=sms")],
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        author="jefe",
        reason="mantenimiento del proveedor",
    )
    preview = await previewer(engine, config, CountedAudience({"es-MX": 9})).preview(
        alert(), language="en"
    )

    sms = _route(preview, "sms")
    assert sms.held == "silenced"
    assert (sms.audience, sms.eta_s, sms.cost) == (None, None, None)
    assert sms.renderings[0].text  # still shown, so the officer sees what is held
    assert _route(preview, "canal").held is None
    assert preview.approvals_required == 0  # only the automatic post would go out
    assert any("weather-sms" in w and "silenced" in w for w in preview.warnings)


async def test_a_cancel_follows_the_routes_of_what_it_cancels_to_who_was_reached(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    audience = CountedAudience({"es-MX": 12})
    original = alert(identifier="PRE-ORIGINAL")
    stored = await lifecycle.ingest_alert(
        engine, original, raw=None, source="test", actor="test", now=datetime.now(UTC)
    )
    alert_id = stored.result.alert_id
    assert alert_id is not None
    planner = Planner(engine, config, audience=audience)
    await planner.dispatch(alert_id)  # the post goes out; the SMS waits for one person
    async with engine.begin() as conn:
        await conn.execute(
            update(dispatch_routes)
            .where(dispatch_routes.c.alert_id == alert_id)
            .where(dispatch_routes.c.state == "awaiting_approval")
            .values(state="planning")
        )
    await planner.plan_ready(alert_id)
    async with engine.begin() as conn:
        await conn.execute(update(deliveries).values(state="sent"))
    cancel = Alert(
        identifier="PRE-CANCEL",
        sender=SENDER,
        sent=datetime.now(UTC).replace(microsecond=0),
        status=Status.ACTUAL,
        msg_type=MsgType.CANCEL,
        scope=Scope.PUBLIC,
        references=(original.key,),
    )

    preview = await previewer(engine, config, audience).preview(cancel, language="es")

    routes = {(r.route, r.channel): r for r in preview.routes}
    assert set(routes) == {("weather-sms", "sms"), ("weather-post", "canal")}
    sms = routes[("weather-sms", "sms")]
    assert sms.audience == 12 and sms.approval == "one"
    [rendering] = sms.renderings
    assert rendering.problems == () and rendering.text
    segments = count_sms(rendering.text).segments
    assert sms.cost is not None and sms.cost.total == pytest.approx(12 * segments * PER_SEGMENT)
    assert routes[("weather-post", "canal")].audience == 1  # the one post, to be edited
    assert preview.approvals_required == 1
    assert sum(f"alerta {alert_id}:" in w for w in preview.warnings) == 2


async def test_counting_stops_at_the_cap_and_says_at_least(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    audience = CountedAudience({"es-MX": 50})
    capped = Previewer(
        engine,
        config,
        audience=audience,
        limits=channel_rate_limits(config.channels),
        counter=AudienceCounter(audience, cap=5),
    )
    preview = await capped.preview(alert(), language="en")

    assert _route(preview, "sms").audience == 5
    assert any("at least 5" in w for w in preview.warnings)


async def test_editing_only_the_text_reuses_the_audience_count(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    audience = CountedAudience({"es-MX": 8})
    live = previewer(engine, config, audience)

    first = await live.preview(alert(info(headline="Lluvias")))
    calls = audience.target_calls
    edited = await live.preview(alert(info(headline="Lluvias intensas en la montaña")))
    assert audience.target_calls == calls  # typing in the headline counts nobody again
    assert "Lluvias intensas en la montaña" in _route(edited, "sms").renderings[0].text
    assert _route(first, "sms").audience == _route(edited, "sms").audience == 8

    moved = await live.preview(alert(info(areas=(Area(area_desc="Toluca"),))))
    assert audience.target_calls > calls  # another area is another audience
    assert _route(moved, "sms").audience == 8


async def test_a_route_to_a_disabled_channel_is_a_problem_not_an_error(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    (tmp_path / "channels" / "sms.toml").write_text(
        'name = "sms"\nkind = "sms"\nenabled = false\n', encoding="utf-8"
    )
    config = load_config(tmp_path / "alertcast.toml")
    preview = await previewer(engine, config, CountedAudience({"es-MX": 3})).preview(
        alert(), language="en"
    )

    sms = _route(preview, "sms")
    assert sms.kind == "unknown" and sms.audience is None
    assert "not enabled" in sms.renderings[0].problems[0]
