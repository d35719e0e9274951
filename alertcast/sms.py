"""SMS arithmetic: GSM 03.38 (3GPP TS 23.038) versus UCS-2, segments, transliteration.

An SMS carries 140 octets. A message written only in the GSM 7-bit default
alphabet packs 160 septets into one; a message with a single character outside
it is sent in UCS-2 and holds 70 UTF-16 code units. Longer messages are
concatenated: each part gives up room to a User Data Header, leaving 153
septets or 67 code units. Operators bill per segment and many cap how many
segments they will join, so a duty officer must see the count before sending.

Rules applied here, all from 03.38 and the concatenation header:

* The characters of the *extension table* (``^ { } \\ [ ~ ] | €`` and form
  feed) are sent as ESC + code, so they cost two septets, and the pair is
  never split across two segments.
* In UCS-2, a character outside the Basic Multilingual Plane (most emoji) is a
  surrogate pair: two code units, never split across two segments.
* Spanish ``á í ó ú`` (and their capitals) are not in the GSM alphabet while
  ``é ñ ü`` are; a single ``á`` therefore turns the whole message into UCS-2
  and can double its segments. :func:`transliterate_to_gsm7` removes such
  characters, and :func:`choose_sms_text` uses it only when it saves segments.

Cutting a text to fit (:func:`cut_at_word`) never stops inside a word; it is
shared by every channel, not only SMS.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SmsCount",
    "choose_sms_text",
    "count_sms",
    "cut_at_word",
    "gsm7_septets",
    "is_gsm7",
    "split_sms",
    "transliterate_to_gsm7",
    "ucs2_units",
]

Encoding = Literal["gsm7", "ucs2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The 03.38 default alphabet (127 characters: 0x1B is the escape, not a character)."""

GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
"""The 03.38 extension table: each is ESC + code, two septets."""

GSM7_SINGLE_SEGMENT = 160
GSM7_MULTI_SEGMENT = 153
UCS2_SINGLE_SEGMENT = 70
UCS2_MULTI_SEGMENT = 67


@dataclass(frozen=True, slots=True)
class SmsCount:
    """How a text travels as SMS."""

    encoding: Encoding
    units: int
    """Septets for GSM-7, UTF-16 code units for UCS-2."""
    segments: int


def is_gsm7(text: str) -> bool:
    """True when every character is in the default alphabet or its extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def gsm7_septets(text: str) -> int:
    """Septets of a GSM-7 text: one per character, two per extension-table character."""
    return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)


def ucs2_units(text: str) -> int:
    """UTF-16 code units: a character beyond U+FFFF is a surrogate pair and counts two."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _unit_costs(text: str) -> tuple[Encoding, list[int]]:
    if is_gsm7(text):
        return "gsm7", [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return "ucs2", [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _limits(encoding: Encoding) -> tuple[int, int]:
    if encoding == "gsm7":
        return GSM7_SINGLE_SEGMENT, GSM7_MULTI_SEGMENT
    return UCS2_SINGLE_SEGMENT, UCS2_MULTI_SEGMENT


def split_sms(text: str) -> list[str]:
    """The segments the text is sent as, in order; never splitting an escape or a surrogate pair.

    An empty text is one (empty) segment: an SMS is still sent.
    """
    encoding, costs = _unit_costs(text)
    single, multi = _limits(encoding)
    if sum(costs) <= single:
        return [text]
    segments: list[str] = []
    start = 0
    used = 0
    for index, cost in enumerate(costs):
        if used + cost > multi:
            segments.append(text[start:index])
            start, used = index, 0
        used += cost
    segments.append(text[start:])
    return segments


def count_sms(text: str) -> SmsCount:
    """Encoding, units and segments for ``text``, as a phone or an SMS gateway counts them."""
    encoding, costs = _unit_costs(text)
    units = sum(costs)
    single, _ = _limits(encoding)
    segments = 1 if units <= single else len(split_sms(text))
    return SmsCount(encoding, units, segments)


# --------------------------------------------------------------------------- transliteration

_REPLACEMENTS: dict[str, str] = {
    "ç": "Ç",  # 0x09 is shown as ç or Ç depending on the handset; either reads right
    "‘": "'",
    "’": "'",
    "‚": "'",
    "‛": "'",
    "′": "'",
    "“": '"',
    "”": '"',
    "„": '"',
    "«": '"',
    "»": '"',
    "″": '"',
    "‐": "-",
    "‑": "-",
    "‒": "-",
    "–": "-",
    "—": "-",
    "―": "-",
    "−": "-",
    "…": "...",
    "•": "-",
    "·": ".",
    "\u00a0": " ",
    "\u2007": " ",
    "\u202f": " ",
    "\t": " ",
    "º": "o",
    "ª": "a",
    "°": "o",
    "×": "x",
    "÷": "/",
    "¢": "c",
    "©": "(c)",
    "®": "(R)",
    "™": "TM",
    "Œ": "OE",
    "œ": "oe",
    "Ð": "D",
    "ð": "d",
    "Þ": "Th",
    "þ": "th",
    "Ł": "L",
    "ł": "l",
    "Đ": "D",
    "đ": "d",
    "ı": "i",
}


def _transliterate_char(ch: str) -> str:
    if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
        return ch
    if ch in _REPLACEMENTS:
        return _REPLACEMENTS[ch]
    # Letters with diacritics: keep the base letter (á → a, Ú → U, ã → a, ő → o).
    decomposed = unicodedata.normalize("NFD", ch)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    if base and all(c in GSM7_BASIC for c in base):
        return base
    category = unicodedata.category(ch)
    if category.startswith("M") or category in ("Cf", "Cs", "Co", "Cn"):
        return ""  # combining marks, format characters, lone surrogates
    if category == "So" or (0x1F000 <= ord(ch) <= 0x1FAFF) or ord(ch) in (0xFE0F, 0x200D):
        return ""  # emoji and pictographs carry no words
    if category.startswith("Z"):
        return " "
    return "?"


def transliterate_to_gsm7(text: str) -> str:
    """``text`` with every character outside GSM 03.38 replaced by its nearest GSM-7 spelling.

    Accents are dropped only from letters that need it (``á`` → ``a`` but ``é``
    stays), typographic quotes and dashes become ASCII ones, emoji are removed,
    and anything without a spelling becomes ``?``. The result always satisfies
    :func:`is_gsm7`.
    """
    if is_gsm7(text):
        return text
    out = "".join(_transliterate_char(ch) for ch in unicodedata.normalize("NFC", text))
    # Removing emoji can leave doubled spaces: "🔴 CIERRE 🔴" → " CIERRE ".
    lines = [" ".join(line.split(" ")).strip(" ") for line in out.split("\n")]
    joined = "\n".join(lines)
    while "  " in joined:
        joined = joined.replace("  ", " ")
    return joined


def choose_sms_text(text: str, *, transliterate: bool) -> tuple[str, bool]:
    """The text to send and whether it was transliterated.

    Transliteration happens only when allowed and when it saves at least one
    segment: a message that costs the same either way keeps its accents.
    """
    if not transliterate or is_gsm7(text):
        return text, False
    converted = transliterate_to_gsm7(text)
    if count_sms(converted).segments < count_sms(text).segments:
        return converted, True
    return text, False


# --------------------------------------------------------------------------- word-safe cutting


def cut_at_word(text: str, fits: Callable[[str], bool], *, ellipsis: str = "…") -> str | None:
    """The longest start of ``text`` ending at a word boundary for which ``fits(start + ellipsis)``.

    Returns ``text`` itself when it fits whole, and None when not even the
    first word fits: a word is never cut in half (the caller decides whether
    to drop the field). Trailing punctuation before the cut is removed so the
    result reads "…km 45…" rather than "…km 45,…". ``fits`` must be monotone:
    if a text fits, so does every prefix of it.
    """
    if fits(text):
        return text
    boundaries = _word_ends(text)
    if not boundaries:
        return None
    low, high = 0, len(boundaries) - 1
    best: str | None = None
    while low <= high:
        middle = (low + high) // 2
        candidate = _trim_end(text[: boundaries[middle]]) + ellipsis
        if fits(candidate):
            best = candidate
            low = middle + 1
        else:
            high = middle - 1
    return best


def _word_ends(text: str) -> list[int]:
    """Indexes where a word ends (the next character is whitespace), excluding the text's end."""
    ends = []
    previous_space = True
    for index, ch in enumerate(text):
        space = ch.isspace()
        if space and not previous_space:
            ends.append(index)
        previous_space = space
    return ends


def _trim_end(text: str) -> str:
    return text.rstrip().rstrip(",;:-–—(").rstrip()
