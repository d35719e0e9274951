"""SMS arithmetic against the GSM 03.38 rules: alphabet, extension table, UCS-2, segments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertcast.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    choose_sms_text,
    count_sms,
    cut_at_word,
    gsm7_septets,
    is_gsm7,
    split_sms,
    transliterate_to_gsm7,
    ucs2_units,
)

EMOJI = "\U0001f6a8"  # 🚨, outside the BMP: a surrogate pair in UTF-16

# text, encoding, units (septets or UTF-16 code units), segments
TRICKY = [
    ("Hola", "gsm7", 4, 1),
    ("", "gsm7", 0, 1),
    ("€", "gsm7", 2, 1),
    ("[", "gsm7", 2, 1),
    ("]", "gsm7", 2, 1),
    ("~", "gsm7", 2, 1),
    ("^", "gsm7", 2, 1),
    ("{", "gsm7", 2, 1),
    ("}", "gsm7", 2, 1),
    ("\\", "gsm7", 2, 1),
    ("|", "gsm7", 2, 1),
    ("\f", "gsm7", 2, 1),
    ("é", "gsm7", 1, 1),
    ("ñ", "gsm7", 1, 1),
    ("ü", "gsm7", 1, 1),
    ("Ñandú", "ucs2", 5, 1),  # ú is not in GSM 03.38
    ("á", "ucs2", 1, 1),
    ("í", "ucs2", 1, 1),
    ("ó", "ucs2", 1, 1),
    ("ú", "ucs2", 1, 1),
    ("ç", "ucs2", 1, 1),  # only the capital Ç is in the table
    ("Ç", "gsm7", 1, 1),
    ("@£$¥¿¡§ΔΩ", "gsm7", 9, 1),
    ("`", "ucs2", 1, 1),  # the backtick is not GSM
    (EMOJI, "ucs2", 2, 1),
    ("Precio: 10€ [aprox]", "gsm7", 22, 1),
    ("Alerta 🚨 en León", "ucs2", 17, 1),
    ("€" * 80, "gsm7", 160, 1),
    ("€" * 81, "gsm7", 162, 2),
    ("a" * 160, "gsm7", 160, 1),
    ("a" * 161, "gsm7", 161, 2),
    ("a" * 306, "gsm7", 306, 2),
    ("a" * 307, "gsm7", 307, 3),
    ("á" * 70, "ucs2", 70, 1),
    ("á" * 71, "ucs2", 71, 2),
    ("á" * 134, "ucs2", 134, 2),
    ("á" * 135, "ucs2", 135, 3),
    (EMOJI * 35, "ucs2", 70, 1),
    (EMOJI * 36, "ucs2", 72, 2),
]


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), TRICKY)
def test_encoding_and_segments_follow_03_38(
    text: str, encoding: str, units: int, segments: int
) -> None:
    counted = count_sms(text)
    assert (counted.encoding, counted.units, counted.segments) == (encoding, units, segments)
    assert len(split_sms(text)) == segments


def test_the_alphabet_tables_have_their_03_38_sizes() -> None:
    assert len(GSM7_BASIC) == 127  # 128 codes, one of which (0x1B) is the escape
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


def test_an_escape_pair_is_never_split_across_segments() -> None:
    text = "a" * 152 + "€" + "b" * 10  # the € would straddle septets 153 and 154
    segments = split_sms(text)
    assert segments[0] == "a" * 152
    assert segments[1].startswith("€")
    assert all(gsm7_septets(s) <= 153 for s in segments)


def test_a_surrogate_pair_is_never_split_across_segments() -> None:
    text = "á" * 66 + EMOJI + "b" * 10  # the emoji would straddle units 67 and 68
    segments = split_sms(text)
    assert segments[0] == "á" * 66
    assert segments[1].startswith(EMOJI)
    assert "".join(segments) == text


def test_transliteration_keeps_gsm_letters_and_drops_other_accents() -> None:
    assert transliterate_to_gsm7("Está ahí, míralo: ñandú, pingüino, café") == (
        "Esta ahi, miralo: ñandu, pingüino, café"
    )
    assert transliterate_to_gsm7("«Evacúe» — ya… 🚨 ¡ahora!") == '"Evacue" - ya... ¡ahora!'
    assert transliterate_to_gsm7("Ŝtato 中文") == "Stato ??"


@given(st.text(max_size=200))
def test_transliteration_always_gives_gsm7(text: str) -> None:
    assert is_gsm7(transliterate_to_gsm7(text))


def test_transliteration_is_used_only_when_it_saves_segments() -> None:
    short = "Sismo en León, evacúe"  # 1 segment either way: keep the accent
    assert choose_sms_text(short, transliterate=True) == (short, False)
    long = "Evacúe la zona de inmediato. " * 4  # 116 chars: UCS-2 needs 2, GSM-7 1
    chosen, converted = choose_sms_text(long, transliterate=True)
    assert converted and is_gsm7(chosen)
    assert count_sms(chosen).segments == 1 < count_sms(long).segments
    assert choose_sms_text(long, transliterate=False) == (long, False)


@given(st.text(max_size=500))
def test_segments_reassemble_and_respect_their_sizes(text: str) -> None:
    segments = split_sms(text)
    assert "".join(segments) == text
    counted = count_sms(text)
    assert counted.segments == len(segments)
    if counted.segments > 1:
        measure = gsm7_septets if counted.encoding == "gsm7" else ucs2_units
        limit = 153 if counted.encoding == "gsm7" else 67
        assert all(measure(segment) <= limit for segment in segments)


def test_cut_at_word_never_cuts_inside_a_word() -> None:
    text = "Evacúe hacia zonas altas inmediatamente"
    cut = cut_at_word(text, lambda t: len(t) <= 20, ellipsis="...")
    assert cut == "Evacúe hacia..."
    assert cut_at_word(text, lambda t: len(t) <= 100) == text
    assert cut_at_word("Supercalifragilístico", lambda t: len(t) <= 5) is None


def test_cut_at_word_drops_dangling_punctuation() -> None:
    cut = cut_at_word(
        "Autopista México-Cuernavaca, km 45, dirección Cuernavaca", lambda t: len(t) < 32
    )
    assert cut == "Autopista México-Cuernavaca…"


@given(st.text(max_size=120), st.integers(min_value=1, max_value=120))
def test_cut_at_word_returns_a_whole_word_prefix_that_fits(text: str, limit: int) -> None:
    cut = cut_at_word(text, lambda t: len(t) <= limit, ellipsis="…")
    if cut is None:
        return
    assert len(cut) <= limit
    if cut != text:
        kept = cut.removesuffix("…")
        assert text.startswith(kept)
        following = text[len(kept) :]
        # The cut lands before whitespace or removed trailing punctuation, never mid-word.
        assert (
            following[:1].isspace()
            or following.lstrip(",;:-–—(")[:1].isspace()
            or not (following.strip())
        )
