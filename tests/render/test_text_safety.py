"""Feed text is neutralised per channel: no markup, no mentions, no invisible tricks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertcast.text_safety import (
    defuse_mentions,
    escape_html,
    neutralise,
    strip_invisible,
    telegram_html_problems,
)
from tests.render.telegram_checker import telegram_errors

RLO = "\u202e"
ZWSP = "\u200b"


@pytest.mark.parametrize(
    ("hostile", "clean"),
    [
        (f"Evacuar{RLO}ahora", "Evacuarahora"),
        ("\u2066aislado\u2069", "aislado"),
        (f"e{ZWSP}v\u200ca\u2060c\ufeffuar", "evacuar"),
        ("línea\x00uno\x07\x1b[31m\x7f\x9b", "líneauno[31m"),
        ("tab\there", "tab here"),
        ("uno\r\ndos\rtres\u2028cuatro", "uno\ndos\ntres\ncuatro"),
        ("\x85c1", "\nc1"),
        ("sua\u00advemente", "suavemente"),
        ("\u3164\u115fvacío", "vacío"),
    ],
)
def test_invisible_and_control_characters_are_removed(hostile: str, clean: str) -> None:
    assert strip_invisible(hostile) == clean


def test_marks_needed_by_right_to_left_scripts_are_kept() -> None:
    text = "تحذير\u200f: 5 km"
    assert strip_invisible(text) == text


def test_emoji_sequences_keep_their_joiners_and_flags_their_tags() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    scotland = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    assert strip_invisible(family + scotland) == family + scotland
    assert strip_invisible("a\u200db") == "ab"  # a joiner between letters is a hiding place


def test_a_zalgo_run_of_combining_marks_is_capped() -> None:
    zalgo = "a" + "\u0301" * 500
    assert len(strip_invisible(zalgo)) == 9


def test_single_line_fields_lose_their_line_breaks() -> None:
    assert neutralise("Ciudad de\nMéxico\r\n", "sms", multiline=False) == "Ciudad de México"


def test_whitespace_is_normalised() -> None:
    assert neutralise("  uno   dos \n\n\n\n tres  ", "sms") == "uno dos\n\ntres"


@pytest.mark.parametrize("kind", ["x", "mastodon", "bluesky", "facebook", "telegram", "webhook"])
def test_mentions_are_defused_on_social_channels(kind: str) -> None:
    text = neutralise("@everyone @here avisen a @CAPUFE; escriban a info@capufe.gob.mx", kind)
    assert "@everyone" not in text and "@here" not in text and "@CAPUFE" not in text
    assert "\ufe6beveryone" in text
    assert "info@capufe.gob.mx" in text  # an address is not a mention


def test_the_fullwidth_at_sign_is_defused_too() -> None:
    # X treats U+FF20 as an @ sign.
    assert "＠" not in defuse_mentions("＠everyone")


def test_mentions_are_left_alone_where_nobody_is_notified() -> None:
    assert neutralise("@CAPUFE informa", "sms") == "@CAPUFE informa"


def test_whatsapp_formatting_markers_are_neutralised() -> None:
    text = neutralise("*URGENTE* _no_ ~salga~ ```código```", "whatsapp")
    assert not set("*_~`") & set(text)
    assert "URGENTE" in text and "salga" in text


def test_html_escaping_uses_only_entities_telegram_knows() -> None:
    escaped = escape_html('<b>"Tom & Jerry"</b>')
    assert escaped == "&lt;b&gt;&quot;Tom &amp; Jerry&quot;&lt;/b&gt;"
    assert telegram_errors(escaped) == []


@pytest.mark.parametrize(
    ("html", "ok"),
    [
        ("<b>a</b> &amp; <i>b</i>", True),
        ('<a href="https://x.mx/?a=1&amp;b=2">x</a>', True),
        ("&#128680; &#x1F6A8;", True),
        ("<b>a", False),
        ("<b><i>a</b></i>", False),
        ("<div>a</div>", False),
        ("a & b", False),
        ("&nbsp;", False),
        ("1 < 2", False),
        ("2 > 1", False),
        ('<a onclick="x">a</a>', False),
        ("&#0;", False),
    ],
)
def test_telegram_html_problems_matches_the_independent_checker(html: str, ok: bool) -> None:
    assert (telegram_html_problems(html) == []) is ok
    assert (telegram_errors(html) == []) is ok


@given(st.text(max_size=300))
def test_neutralised_text_holds_no_invisible_or_control_characters(text: str) -> None:
    clean = neutralise(text, "telegram")
    assert not any(ord(ch) < 0x20 and ch != "\n" for ch in clean)
    assert not any(0x202A <= ord(ch) <= 0x202E or 0x2066 <= ord(ch) <= 0x2069 for ch in clean)
    assert not any(ch in clean for ch in (ZWSP, "\u2060", "\ufeff", "\u200c"))
    assert telegram_errors(escape_html(clean)) == []
