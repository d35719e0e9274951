"""Keyword parsing and the answers' length: what a text message asks for, read forgivingly."""

from __future__ import annotations

import pytest

from alertcast.sms import choose_sms_text, count_sms, is_gsm7
from alertcast.subscribers.keyword_texts import TEXTS, keyword_text
from alertcast.subscribers.keywords import KEYWORDS, Command, parse_keyword

LONGEST_MUNICIPALITY = "Dolores Hidalgo Cuna de la Independencia Nacional"
"""The longest municipality name in Mexico's INEGI catalogue (49 characters)."""

SPANISH_OPT_OUT = ["BAJA", "STOP", "CANCELAR", "ALTO"]
ENGLISH_OPT_OUT = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]


# --------------------------------------------------------------------------- subscribe


def test_alta_with_a_municipality_subscribes_to_it_in_spanish() -> None:
    assert parse_keyword("ALTA Iztapalapa") == Command("subscribe", "Iztapalapa", "es", "ALTA")


def test_alta_alone_subscribes_without_an_area() -> None:
    assert parse_keyword("ALTA") == Command("subscribe", "", "es", "ALTA")


@pytest.mark.parametrize("word", ["START", "SUBSCRIBE", "UNSTOP"])
def test_english_opt_in_words_subscribe_with_english_answers(word: str) -> None:
    command = parse_keyword(word)
    assert (command.action, command.language, command.area) == ("subscribe", "en", "")


def test_an_english_opt_in_also_takes_a_municipality() -> None:
    assert parse_keyword("start Coyoacán") == Command("subscribe", "Coyoacán", "en", "START")


@pytest.mark.parametrize(
    ("text", "area"),
    [
        ("alta iztapalapa", "iztapalapa"),
        ("  Alta   Gustavo   A.  Madero  ", "Gustavo A. Madero"),
        ("ÁLTA Benito Juárez", "Benito Juárez"),
        ("¡Alta! Coyoacán.", "Coyoacán"),
        ("ALTA: Iztapalapa", "Iztapalapa"),
        ("ALTA,Iztapalapa", "Iztapalapa"),
        ('ALTA "Tlalpan"', "Tlalpan"),
        ("alta\nIztapalapa\n", "Iztapalapa"),
        ("\u200bALTA\u00a0Iztapalapa", "Iztapalapa"),
        ("🚨 ALTA Iztapalapa", "Iztapalapa"),
        ("ＡＬＴＡ Iztapalapa", "Iztapalapa"),
    ],
)
def test_case_accents_blanks_and_punctuation_do_not_matter(text: str, area: str) -> None:
    command = parse_keyword(text)
    assert (command.action, command.area, command.language) == ("subscribe", area, "es")


def test_an_overlong_area_is_cut() -> None:
    command = parse_keyword("ALTA " + "Iztapalapa " * 50)
    assert command.action == "subscribe"
    assert 0 < len(command.area) <= 100 and command.area.startswith("Iztapalapa Iztapalapa")


# --------------------------------------------------------------------------- unsubscribe


@pytest.mark.parametrize("word", SPANISH_OPT_OUT)
def test_spanish_opt_out_words_unsubscribe(word: str) -> None:
    assert parse_keyword(word).action == "unsubscribe"


@pytest.mark.parametrize("word", ENGLISH_OPT_OUT)
def test_standard_english_opt_out_words_unsubscribe(word: str) -> None:
    assert parse_keyword(word).action == "unsubscribe"


@pytest.mark.parametrize("word", ["BAJA", "CANCELAR", "ALTO"])
def test_spanish_only_opt_out_words_answer_in_spanish(word: str) -> None:
    assert parse_keyword(word).language == "es"


@pytest.mark.parametrize("word", [w for w in ENGLISH_OPT_OUT if w != "STOP"])
def test_english_only_opt_out_words_answer_in_english(word: str) -> None:
    assert parse_keyword(word).language == "en"


def test_stop_is_used_in_both_languages_so_it_names_none() -> None:
    assert parse_keyword("STOP") == Command("unsubscribe", "", None, "STOP")


@pytest.mark.parametrize(
    "text",
    ["stop", "Stop.", "  STOP  ", "baja por favor", "Cancelar!", "ALTO ya", "quit\n", "Bája"],
)
def test_opt_outs_are_read_however_they_are_written(text: str) -> None:
    command = parse_keyword(text)
    assert command.action == "unsubscribe" and command.area == ""


def test_only_the_first_word_is_the_keyword() -> None:
    assert parse_keyword("ALTA pero luego STOP").action == "subscribe"
    assert parse_keyword("STOP ALTA Iztapalapa") == Command("unsubscribe", "", None, "STOP")
    assert parse_keyword("quiero STOP").action == "unknown"


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize(
    ("text", "language"),
    [("AYUDA", "es"), ("ayúda", "es"), ("HELP", "en"), ("help me", "en"), ("INFO", None)],
)
def test_help_words(text: str, language: str | None) -> None:
    command = parse_keyword(text)
    assert (command.action, command.language) == ("help", language)


# --------------------------------------------------------------------------- unknown


@pytest.mark.parametrize(
    "text",
    ["", "   ", "hola", "¿qué es esto?", "ALTAS", "ALTAIztapalapa", "12345", "🙂", "STOPP", "."],
)
def test_anything_else_is_unknown(text: str) -> None:
    command = parse_keyword(text)
    assert command.action == "unknown" and command.area == "" and command.language is None


def test_every_keyword_is_stored_the_way_it_is_looked_up() -> None:
    for word, (action, _language) in KEYWORDS.items():
        assert word == word.upper() and word.isascii()
        assert parse_keyword(word.lower()).action == action


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("name", "language"), [(name, lang) for name, texts in TEXTS.items() for lang in texts]
)
def test_every_answer_is_one_gsm7_sms_as_sent(name: str, language: str) -> None:
    text = keyword_text(name, language, area=LONGEST_MUNICIPALITY)
    sent, _ = choose_sms_text(text, transliterate=True)
    count = count_sms(sent)
    assert is_gsm7(sent) and count.encoding == "gsm7"
    assert count.segments == 1, (name, language, count.units)


def test_every_answer_exists_in_spanish_and_english() -> None:
    for texts in TEXTS.values():
        assert set(texts) == {"es", "en"}


def test_answers_name_the_way_out_and_the_way_in() -> None:
    for name in ("subscribed_area", "subscribed", "area_not_found", "help", "unknown"):
        assert "BAJA" in keyword_text(name, "es", area="X")
        assert "STOP" in keyword_text(name, "en", area="X")
        assert "ALTA" in keyword_text(name, "es", area="X")
        assert "START" in keyword_text(name, "en", area="X")


def test_an_answer_in_a_language_without_texts_falls_back_to_spanish() -> None:
    assert keyword_text("help", "fr") == keyword_text("help", "es")
