"""``render()``: prefixes, languages, templates, channel formats, fitting and injection."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from alertcast.cap import parse_cap
from alertcast.domain import Area, Category, MsgType, ResponseType, Status
from alertcast.render import RenderError, choose_template, render, split_telegram_html
from alertcast.sms import is_gsm7
from alertcast.text_safety import html_to_text
from tests.render.alerts import (
    ALL_KINDS,
    TEXT_KINDS,
    bilingual,
    make_alert,
    make_info,
    road_alert,
    visible_start,
)
from tests.render.telegram_checker import telegram_errors

PREFIXES = {
    Status.EXERCISE: ("SIMULACRO", "EXERCISE"),
    Status.TEST: ("PRUEBA", "TEST"),
    Status.SYSTEM: ("SISTEMA", "SYSTEM"),
    Status.DRAFT: ("BORRADOR", "DRAFT"),
}


def _texts(rendering: object) -> list[str]:
    """Every text a reader of the channel can see first, one per message."""
    from alertcast.render import Rendering

    assert isinstance(rendering, Rendering)
    if rendering.whatsapp_template is not None:
        return [rendering.whatsapp_template.variables[0]]
    if rendering.kind == "webhook":
        assert rendering.payload is not None
        return [rendering.payload["text"]]
    texts = [visible_start(rendering.kind, part.text) for part in rendering.parts]
    if rendering.subject is not None:
        texts.append(rendering.subject)
    return texts


# --------------------------------------------------------------------------- prefix


@pytest.mark.parametrize("kind", TEXT_KINDS)
@pytest.mark.parametrize("msg_type", [MsgType.ALERT, MsgType.UPDATE, MsgType.CANCEL])
@pytest.mark.parametrize(("language", "index"), [("es", 0), ("en", 1)])
def test_exercises_always_start_with_the_prefix(
    kind: str, msg_type: MsgType, language: str, index: int
) -> None:
    alert = bilingual(status=Status.EXERCISE, msg_type=msg_type)
    rendering = render(alert, kind, language=language)
    word = PREFIXES[Status.EXERCISE][index]
    assert rendering.prefix == word
    for text in _texts(rendering):
        assert text.startswith(word), text


@pytest.mark.parametrize("status", list(PREFIXES))
@pytest.mark.parametrize("kind", ["sms", "telegram", "x", "bluesky", "email"])
def test_every_non_actual_status_has_its_word(status: Status, kind: str) -> None:
    spanish, english = PREFIXES[status]
    assert render(bilingual(status=status), kind, language="es").parts[0].text.startswith(spanish)
    assert render(bilingual(status=status), kind, language="en").parts[0].text.startswith(english)


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_actual_alerts_have_no_prefix(kind: str) -> None:
    rendering = render(bilingual(), kind, language="es")
    assert rendering.prefix is None
    assert not any(text.startswith(("SIMULACRO", "EXERCISE")) for text in _texts(rendering))


def test_an_actual_cancel_of_an_exercise_can_be_marked() -> None:
    cancel = make_alert(msg_type=MsgType.CANCEL, infos=())
    rendering = render(cancel, "sms", language="es", exercise_of_reference=True)
    assert rendering.parts[0].text.startswith("SIMULACRO")
    assert render(cancel, "sms", language="es").prefix is None


def test_the_prefix_is_in_both_languages_when_the_text_is_not_the_audiences() -> None:
    english_only = make_alert(make_info(language="en-US"), status=Status.EXERCISE)
    rendering = render(english_only, "x", language="es")
    assert rendering.parts[0].text.startswith("SIMULACRO / EXERCISE: ")


def test_the_cap_channel_carries_the_status_itself() -> None:
    rendering = render(bilingual(status=Status.EXERCISE), "cap", language="es")
    assert "<status>Exercise</status>" in rendering.parts[0].text
    assert rendering.prefix == "SIMULACRO"


OMITTING_TEMPLATES = [
    "{{ headline }}",
    "",
    "   \n\n  ",
    "{{ '\\n' * 50 }}{{ headline }}",
    "{% if status == 'Exercise' %}REAL ALERT{% endif %} {{ instruction }}",
]


@pytest.mark.parametrize("source", OMITTING_TEMPLATES)
@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_no_template_can_remove_the_prefix(tmp_path: Path, source: str, kind: str) -> None:
    folder = tmp_path / kind
    folder.mkdir()
    for name in ("default", "weather", "update", "cancel"):
        (folder / f"{name}.es.j2").write_text(source, encoding="utf-8")
    for msg_type in (MsgType.ALERT, MsgType.UPDATE, MsgType.CANCEL):
        alert = bilingual(status=Status.EXERCISE, msg_type=msg_type)
        rendering = render(alert, kind, language="es", templates=tmp_path)
        assert rendering.template_file is not None
        assert rendering.template_file.startswith(str(tmp_path))
        for text in _texts(rendering):
            assert text.startswith("SIMULACRO"), (source, text)


def test_a_headline_that_repeats_the_status_word_is_not_doubled() -> None:
    info = make_info(headline="SIMULACRO: sismo en Oaxaca")
    rendering = render(make_alert(info, status=Status.EXERCISE), "x", language="es")
    assert rendering.parts[0].text.startswith("SIMULACRO: ⛈️ Sismo en Oaxaca")
    named = make_info(headline="Simulacro de sismo en Oaxaca")
    drill = render(make_alert(named, status=Status.EXERCISE), "x", language="es")
    assert drill.parts[0].text.startswith("SIMULACRO: ⛈️ Sismo en Oaxaca")
    test = make_info(language="en-US", headline="Typhoon Paeng [TEST]")
    assert "[TEST]" in render(make_alert(test, status=Status.TEST), "x", language="en").text


# --------------------------------------------------------------------------- language


def test_the_info_in_the_audiences_language_is_used() -> None:
    assert render(bilingual(), "x", language="en").language == "en-US"
    assert "Heavy rain" in render(bilingual(), "x", language="en").text
    assert render(bilingual(), "x", language="es-MX").language == "es-MX"
    assert "Zona:" in render(bilingual(), "x", language="es").text


def test_the_fallback_order_is_followed_and_reported() -> None:
    rendering = render(bilingual(), "x", language="fr", fallback_languages=["en", "es"])
    assert rendering.language == "en-US"
    assert any("no info in fr" in warning for warning in rendering.warnings)
    assert render(bilingual(), "x", language="fr").language == "es-MX"  # default order: es, en


def test_an_alert_in_no_known_language_uses_its_first_info() -> None:
    swedish = make_alert(make_info(language="sv-SE", headline="Kraftigt regn"))
    rendering = render(swedish, "x", language="es")
    assert rendering.language == "sv-SE"
    assert "Kraftigt regn" in rendering.text
    assert "Zona:" in rendering.text  # labels from the audience's template
    assert any("first info" in warning for warning in rendering.warnings)


def test_a_channels_language_option_is_its_default() -> None:
    rendering = render(bilingual(), "x", options={"language": "en"})
    assert rendering.language == "en-US"


# --------------------------------------------------------------------------- templates


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        (make_alert(msg_type=MsgType.CANCEL), "cancel"),
        (make_alert(make_info(response_types=(ResponseType.ALL_CLEAR,))), "cancel"),
        (make_alert(msg_type=MsgType.UPDATE), "update"),
        (make_alert(make_info(categories=(Category.GEO,), event="Sismo")), "earthquake"),
        (make_alert(make_info(categories=(Category.GEO,), event="Earthquake")), "earthquake"),
        (make_alert(make_info(categories=(Category.GEO,), event="Volcán")), "default"),
        (make_alert(make_info(categories=(Category.MET,))), "weather"),
        (make_alert(make_info(categories=(Category.HEALTH,))), "health"),
        (make_alert(make_info(categories=(Category.TRANSPORT,))), "road"),
        (make_alert(make_info(categories=(Category.SAFETY,))), "default"),
        (make_alert(infos=()), "default"),
    ],
)
def test_the_template_is_chosen_from_the_alert(alert: object, expected: str) -> None:
    from alertcast.domain import Alert

    assert isinstance(alert, Alert)
    assert choose_template(alert, alert.infos[0] if alert.infos else None) == expected
    assert render(alert, "console").template == expected


def test_a_template_asked_for_wins() -> None:
    assert render(bilingual(), "x", template="manual").template == "manual"
    assert render(bilingual(), "x", options={"template": "health"}).template == "health"


def test_road_status_in_the_capufe_style() -> None:
    text = render(road_alert(), "x", language="es").text
    assert text.startswith("🔴 CIERRE DE CIRCULACIÓN 🔴\n")
    assert "Autopista Cuernavaca - Acapulco, km 349, dirección Cuernavaca. " in text
    assert text.rstrip().endswith("Toma tus precauciones.\nhttps://alertas.example.mx/aviso/123")
    # Spanish content for an English audience: one language throughout, and a warning.
    fallback = render(road_alert(), "x", language="en")
    assert fallback.text.startswith("🔴 CIERRE DE CIRCULACIÓN 🔴\n")
    assert fallback.warnings == ("no info in en; used es-MX from the fallback order",)
    english_info = replace(road_alert().infos[0], language="en-US", description="Crash.")
    english = render(make_alert(english_info), "x", language="en").text
    assert english.startswith("🔴 ROAD CLOSED 🔴\nAutopista Cuernavaca - Acapulco, km 349, towards")


def test_road_status_is_inferred_from_the_words_when_not_declared() -> None:
    info = make_info(
        categories=(Category.TRANSPORT,),
        event="Reducción de carriles",
        headline="Cierre parcial en la autopista La Tinaja - Isla",
    )
    assert render(make_alert(info), "x").text.startswith("🟠 CIERRE PARCIAL DE CIRCULACIÓN 🟠")


def test_sms_templates_leave_emoji_out() -> None:
    text = render(road_alert(), "sms", language="es").parts[0].text
    assert text.startswith("CIERRE DE CIRCULACION\n")  # transliterated: it saves segments
    assert "🔴" not in text


def test_a_missing_template_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="no template 'nope'"):
        render(bilingual(), "x", template="nope")


def test_a_template_using_a_missing_field_fails_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "weather.es.j2").write_text("{{ headline }}\n{{ headlin }}\n")
    with pytest.raises(RenderError, match=r"weather\.es\.j2:2: .*headlin"):
        render(bilingual(), "x", language="es", templates=tmp_path)


def test_the_sandbox_refuses_attribute_tricks(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "weather.es.j2").write_text("{{ headline.__class__.__mro__ }}")
    with pytest.raises(RenderError):
        render(bilingual(), "x", language="es", templates=tmp_path)


def test_a_channel_override_beats_a_kind_override(tmp_path: Path) -> None:
    from alertcast.config import ChannelConfig

    for folder, word in (("x", "KIND"), ("x-capufe", "CHANNEL")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "weather.es.j2").write_text(word + " {{ headline }}")
    channel = ChannelConfig(name="x-capufe", kind="x", file=Path("channels/x-capufe.toml"))
    assert render(bilingual(), channel, templates=tmp_path).text.startswith("CHANNEL ")
    assert render(bilingual(), "x", templates=tmp_path).text.startswith("KIND ")


# --------------------------------------------------------------------------- injection

HOSTILE = (
    "<b>Alerta</b> & <script>x</script> *negrita* _it_ @everyone \u202eetats\u202c \u200bok\x07"
)


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_hostile_feed_text_is_neutralised_on_every_channel(kind: str) -> None:
    info = make_info(headline=HOSTILE, description=HOSTILE, instruction=HOSTILE)
    rendering = render(make_alert(info), kind, language="es", session_open=True)
    # A webhook carries the alert itself as data (JSON-escaped); its text is what is shown.
    texts = [rendering.payload["text"]] if rendering.payload else [p.text for p in rendering.parts]
    for text in texts:
        assert "\u202e" not in text and "\u200b" not in text and "\x07" not in text
        if kind == "telegram":
            assert telegram_errors(text) == []
            assert "&lt;b&gt;Alerta&lt;/b&gt; &amp; &lt;script&gt;" in text
            assert "<script>" not in text
        if kind in ("x", "mastodon", "bluesky", "facebook", "telegram", "whatsapp"):
            assert "@everyone" not in text
        if kind == "whatsapp":
            assert "*negrita*" not in text and "_it_" not in text
    if kind == "email":
        assert rendering.html is not None
        assert "<script>" not in rendering.html
        assert "&lt;script&gt;" in rendering.html


def test_a_link_that_is_not_http_is_refused() -> None:
    info = make_info(web='javascript:alert("x")')
    rendering = render(make_alert(info), "telegram")
    assert "javascript" not in rendering.text
    assert any("not an http(s) address" in warning for warning in rendering.warnings)


def test_a_quote_in_a_link_cannot_break_out_of_the_href() -> None:
    rendering = render(make_alert(make_info(web='https://x.mx/"onclick="y')), "telegram")
    assert "onclick" not in rendering.text
    assert telegram_errors(rendering.text) == []


# --------------------------------------------------------------------------- channels


def test_sms_reports_encoding_and_segments() -> None:
    rendering = render(bilingual(), "sms", language="es")
    part = rendering.parts[0]
    assert part.encoding == "gsm7" and is_gsm7(part.text)
    assert part.segments is not None and part.segments <= 3
    assert any("transliterated to GSM-7" in warning for warning in rendering.warnings)
    exact = render(bilingual(), "sms", language="es", options={"transliterate": False})
    assert exact.parts[0].encoding == "ucs2"
    assert "aléjese" in exact.parts[0].text


def test_sms_cuts_at_words_and_keeps_headline_instruction_and_link() -> None:
    words = " ".join(f"palabra{n}" for n in range(200))
    alert = make_alert(make_info(description=words))
    rendering = render(alert, "sms", options={"max_segments": 2})
    text = rendering.parts[0].text
    assert rendering.parts[0].segments == 2
    assert rendering.truncated
    assert any(w.startswith("description shortened") for w in rendering.warnings)
    kept = re.findall(r"palabra\d+", text)
    assert kept and all(word in words.split() for word in kept)  # no word cut in half
    assert "Lluvias intensas en la Ciudad de México" in text  # é is in GSM 03.38
    assert "Evite cruzar calles inundadas" in text
    assert "https://alertas.example.mx/aviso/123" in text


def test_x_drops_the_description_first() -> None:
    alert = make_alert(make_info(description="Texto largo. " * 60))
    rendering = render(alert, "x")
    text = rendering.parts[0].text
    assert rendering.parts[0].length <= 280
    assert "Lluvias intensas en la Ciudad de México" in text
    assert "Evite cruzar calles inundadas y aléjese de zonas bajas." in text
    assert "https://alertas.example.mx/aviso/123" in text
    assert rendering.warnings[0].startswith("description ")


def test_headline_and_instruction_share_the_room_when_both_are_long() -> None:
    info = make_info(headline="Titular muy largo " * 20, instruction="Instrucción larga " * 20)
    rendering = render(make_alert(info), "x")
    text = rendering.parts[0].text
    assert rendering.parts[0].length <= 280
    assert "Titular muy largo" in text and "Instrucción larga" in text
    assert "https://alertas.example.mx/aviso/123" in text


def test_a_configured_alert_url_is_the_link() -> None:
    options = {"alert_url": "https://alertas.gob.mx/a/{identifier}"}
    assert "https://alertas.gob.mx/a/MX-TEST-1" in render(bilingual(), "x", options=options).text


def test_mastodon_limit_is_configurable() -> None:
    alert = make_alert(make_info(description="Texto largo. " * 60))
    assert render(alert, "mastodon").parts[0].length <= 500
    assert render(alert, "mastodon", options={"max_chars": 1000}).parts[0].length > 500


def test_bluesky_shortens_the_link_and_gives_a_facet() -> None:
    url = "https://alertas.example.mx/aviso/123/con/un/camino/muy/largo"
    rendering = render(make_alert(make_info(web=url)), "bluesky")
    part = rendering.parts[0]
    assert url not in part.text
    (facet,) = part.facets
    assert facet.uri == url
    shown = part.text.encode("utf-8")[facet.byte_start : facet.byte_end].decode("utf-8")
    assert shown == "alertas.example.mx/aviso/12…"
    assert facet.to_json()["features"][0]["$type"] == "app.bsky.richtext.facet#link"
    assert part.length <= 300


def test_telegram_splits_long_text_without_breaking_html() -> None:
    description = "\n\n".join(f"Párrafo {n} <con> & símbolos. " * 12 for n in range(20))
    alert = make_alert(make_info(description=description), status=Status.EXERCISE)
    rendering = render(alert, "telegram")
    assert len(rendering.parts) > 1
    assert not rendering.truncated
    for part in rendering.parts:
        assert part.length <= 4096
        assert telegram_errors(part.text) == []
        assert part.text.startswith("SIMULACRO: ")
    whole = "".join(html_to_text(p.text).removeprefix("SIMULACRO: ") for p in rendering.parts)
    for n in range(20):
        assert whole.count(f"Párrafo {n} <con> & símbolos.") == 12


def test_telegram_truncate_policy_sends_one_message() -> None:
    description = "Texto largo. " * 1000
    rendering = render(
        make_alert(make_info(description=description)), "telegram", options={"split": "truncate"}
    )
    assert len(rendering.parts) == 1
    assert rendering.parts[0].length <= 4096
    assert "Evite cruzar calles" in rendering.text
    assert rendering.truncated


def test_split_telegram_html_reopens_tags_across_messages() -> None:
    html = "<b>" + "palabra " * 30 + "</b> fin"
    parts = split_telegram_html(html, 60, "SIMULACRO: ")
    assert len(parts) > 1
    for part in parts:
        assert len(part) <= 60
        assert part.startswith("SIMULACRO: ")
        assert telegram_errors(part) == []
    assert parts[1].startswith("SIMULACRO: <b>")
    assert "&" not in "".join(parts)


def test_split_telegram_html_never_cuts_an_entity_or_a_link() -> None:
    html = '<a href="https://x.mx/a?b=1&amp;c=2">enlace</a> ' + "&amp; " * 40
    for limit in range(45, 80):
        for part in split_telegram_html(html, limit):
            assert len(part) <= limit
            assert telegram_errors(part) == []


def test_whatsapp_uses_a_template_outside_the_session_window() -> None:
    rendering = render(bilingual(status=Status.EXERCISE), "whatsapp", language="es")
    template = rendering.whatsapp_template
    assert template is not None
    assert template.name == "alerta_emergencia" and template.language == "es_MX"
    headline, area, instruction, link = template.variables
    assert headline == "SIMULACRO: Lluvias intensas en la Ciudad de México"
    assert (area, link) == ("Ciudad de México", "https://alertas.example.mx/aviso/123")
    assert "\n" not in instruction
    free = render(bilingual(), "whatsapp", language="es", session_open=True)
    assert free.whatsapp_template is None
    assert "Evite cruzar calles" in free.parts[0].text


def test_email_has_subject_text_and_escaped_html() -> None:
    alert = make_alert(make_info(headline="Lluvia <fuerte> & granizo"), status=Status.TEST)
    rendering = render(alert, "email")
    assert rendering.subject == "PRUEBA: Lluvia <fuerte> & granizo"
    assert rendering.parts[0].text.startswith("PRUEBA: ")
    assert rendering.html is not None
    assert "Lluvia &lt;fuerte&gt; &amp; granizo" in rendering.html
    body = rendering.html.split("<body>", 1)[1]
    assert html_to_text(body).strip().startswith("PRUEBA")


def test_webhook_payload_is_versioned_json() -> None:
    rendering = render(bilingual(status=Status.EXERCISE), "webhook", language="en")
    payload = json.loads(rendering.parts[0].text)
    assert payload["version"] == 1
    assert payload["language"] == "en-US"
    assert payload["text"].startswith("EXERCISE: ")
    assert payload["alert"]["identifier"] == "MX-TEST-1"
    assert payload["alert"]["status"] == "Exercise"


def test_cap_channel_sends_the_alert_itself() -> None:
    alert = bilingual()
    rendering = render(alert, "cap")
    assert parse_cap(rendering.parts[0].text.encode("utf-8")).alert == alert


def test_rendering_json_has_the_documented_keys() -> None:
    record = render(bilingual(), "sms").to_json()
    assert {"channel", "language", "parts", "truncated", "warnings"} <= set(record)
    assert set(record["parts"][0]) >= {"text", "length", "encoding", "segments"}


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_renders_an_alert_without_info(kind: str) -> None:
    cancel = make_alert(msg_type=MsgType.CANCEL, infos=(), status=Status.EXERCISE)
    rendering = render(cancel, kind, language="es")
    assert rendering.parts and rendering.parts[0].text


def test_area_names_are_joined_once_each() -> None:
    info = make_info(areas=(Area("Tlalpan"), Area("Coyoacán"), Area("Tlalpan")))
    assert "Zona: Tlalpan; Coyoacán\n" in render(make_alert(info), "console").text


def test_road_feed_parameters_give_the_capufe_sentence() -> None:
    from alertcast.domain import NamedValue

    info = make_info(
        categories=(Category.TRANSPORT,),
        event="Circulación a contraflujo",
        headline="CARGA VEHICULAR: Aut. La Tinaja - Isla, del km 16 al 17.",
        description="Aut. La Tinaja - Isla, del km 16 al 17. Continúa circulación a contraflujo.",
        instruction="Maneja con precaución.",
        web=None,
        parameters=(
            NamedValue("road", "La Tinaja - Isla"),
            NamedValue("km", "16-17"),
            NamedValue("direction", "ambos sentidos"),
            NamedValue("condition", "contraflow"),
            NamedValue("cause", "labores de mantenimiento"),
            NamedValue("queue", "Isla: 13 km"),
        ),
    )
    assert render(make_alert(info), "x").text == (
        "🟠 CIRCULACIÓN A CONTRAFLUJO 🟠\n"
        "Aut. La Tinaja - Isla, del km 16 al 17, ambos sentidos. Por labores de mantenimiento."
        " Filas: Isla: 13 km. Maneja con precaución."
    )


def test_an_update_headline_that_says_so_is_not_doubled() -> None:
    info = make_info(headline="ACTUALIZACIÓN: se abre un carril")
    text = render(make_alert(info, msg_type=MsgType.UPDATE), "x").text
    assert text.startswith("☑️ ACTUALIZACIÓN: se abre un carril\n")
    plain = render(make_alert(make_info(), msg_type=MsgType.UPDATE), "x").text
    assert plain.startswith("☑️ ACTUALIZACIÓN: Lluvias intensas")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "atención de accidente (choque por alcance)",
            "atención de accidente (choque por alcance).",
        ),
        ("¡Cuidado!", "¡Cuidado!"),
        ("«Evacúe.»", "«Evacúe.»"),
        ("Siga las indicaciones", "Siga las indicaciones."),
    ],
)
def test_sentences_get_a_full_stop_only_when_they_need_one(text: str, expected: str) -> None:
    info = make_info(instruction=text, description="", headline="Aviso")
    assert f"Qué hacer: {expected}" in render(make_alert(info), "console").text
