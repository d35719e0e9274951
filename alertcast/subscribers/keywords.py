"""What a person means by the text message they sent: a keyword, read forgivingly.

People subscribe and unsubscribe by texting a keyword to the service's SMS or
WhatsApp number (``ALTA Iztapalapa``, ``BAJA``, ``STOP``). Phones capitalise,
add accents, stray spaces and punctuation (``"Alta,  iztapalapa."``,
``"¡AYÚDA!"``), so the first word is compared with case, accents and
surrounding punctuation removed, and only the first word decides: the rest is
the place (``ALTA Iztapalapa``), or ignored.

The opt-out words are the ones carriers and Twilio already honour (``STOP``,
``STOPALL``, ``UNSUBSCRIBE``, ``CANCEL``, ``END``, ``QUIT``, ``REVOKE``,
``OPTOUT``) plus the Spanish ones (``BAJA``, ``CANCELAR``, ``ALTO``): someone
who wants no more messages must never have to guess the word. An opt-out acts
at once, without a second question.

The keyword tells the language of the answer when it belongs to one language
(``AYUDA`` → Spanish, ``HELP`` → English); ``STOP`` and ``INFO`` are used in
both, so they leave it to the caller (the person's stored language, else
Spanish). Parsing is pure: no store, no network, so every rule is testable
on its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "HELP_WORDS",
    "KEYWORDS",
    "SUBSCRIBE_WORDS",
    "UNSUBSCRIBE_WORDS",
    "Action",
    "Command",
    "normalize_word",
    "parse_keyword",
]

Action = Literal["subscribe", "unsubscribe", "help", "unknown"]

SUBSCRIBE_WORDS: Mapping[str, str | None] = {
    "ALTA": "es",
    "START": "en",
    "SUBSCRIBE": "en",
    "UNSTOP": "en",
}
"""Keyword → language of the answer. ``UNSTOP`` is Twilio's own way back after a ``STOP``."""

UNSUBSCRIBE_WORDS: Mapping[str, str | None] = {
    "BAJA": "es",
    "CANCELAR": "es",
    "ALTO": "es",
    "STOP": None,
    "STOPALL": "en",
    "UNSUBSCRIBE": "en",
    "CANCEL": "en",
    "END": "en",
    "QUIT": "en",
    "REVOKE": "en",
    "OPTOUT": "en",
}
"""Keyword → language of the answer; ``STOP`` is written by Spanish and English speakers alike."""

HELP_WORDS: Mapping[str, str | None] = {"AYUDA": "es", "HELP": "en", "INFO": None}

KEYWORDS: Mapping[str, tuple[Action, str | None]] = {
    **{word: ("subscribe", lang) for word, lang in SUBSCRIBE_WORDS.items()},
    **{word: ("unsubscribe", lang) for word, lang in UNSUBSCRIBE_WORDS.items()},
    **{word: ("help", lang) for word, lang in HELP_WORDS.items()},
}
"""Every keyword (normalised: upper case, no accents) → (action, language or None)."""

MAX_AREA_CHARS = 100
"""Longer than any municipality's name; a longer text is cut before it is searched."""

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
"""Zero-width characters some keyboards insert; they would split or hide a word."""
_FIRST_WORD = re.compile(r"[^\w]*([^\W\d_]+)")
"""Leading punctuation or symbols (``¡``, ``"``, an emoji), then the first run of letters."""
_AREA_EDGES = " \t\r\n.,;:!?¡¿-–—\"'()[]{}«»“”‘’*_"


@dataclass(frozen=True, slots=True)
class Command:
    """What a text asks for.

    ``area`` is the rest of the text after a subscribe keyword (``""`` when
    none was given), for the area catalogue to search. ``language`` is
    ``"es"`` or ``"en"`` when the keyword tells, None when it does not.
    ``keyword`` is the normalised first word as read (``""`` when there was
    none), for logs.
    """

    action: Action
    area: str = ""
    language: str | None = None
    keyword: str = ""


def normalize_word(word: str) -> str:
    """``word`` upper-cased without accents (``"Ayúda"`` → ``"AYUDA"``, full-width letters too)."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def parse_keyword(text: str) -> Command:
    """The command in ``text``; ``unknown`` (never an error) for anything else, empty included."""
    cleaned = unicodedata.normalize("NFC", text.translate(_INVISIBLE))
    match = _FIRST_WORD.match(cleaned)
    if match is None:
        return Command("unknown")
    keyword = normalize_word(match.group(1))
    action, language = KEYWORDS.get(keyword, ("unknown", None))
    if action != "subscribe":
        return Command(action, language=language, keyword=keyword)
    return Command(action, area=_area(cleaned[match.end() :]), language=language, keyword=keyword)


def _area(rest: str) -> str:
    """The place after the keyword: blanks collapsed, edge punctuation and quotes removed."""
    words = " ".join(rest.split()).strip(_AREA_EDGES)
    return words[:MAX_AREA_CHARS].strip(_AREA_EDGES)
