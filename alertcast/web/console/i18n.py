"""The console's languages: Spanish and English gettext catalogues, and who gets which.

Catalogues are the ``.po`` files in ``alertcast/locale/<lang>/LC_MESSAGES/``,
read with Babel when first needed: there is no compile step to forget, and a
translator's edit shows after a restart. Message ids are the English text, so
a string missing from a catalogue still reads correctly in English.

A person's language comes from, in order: ``?lang=`` (the switch in the page
header, remembered in the ``alertcast_lang`` cookie), that cookie, the
browser's ``Accept-Language``, and Spanish by default (the offices this was
first built for speak Spanish).
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Final

from aiohttp import web
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR: Final = Path(__file__).resolve().parent.parent.parent / "locale"
DOMAIN: Final = "alertcast"
LANGUAGES: Final = ("es", "en")
DEFAULT_LANGUAGE: Final = "es"
LANG_COOKIE: Final = "alertcast_lang"
LANG_PARAM: Final = "lang"


def catalogue_path(language: str) -> Path:
    """Where the ``.po`` catalogue of ``language`` lives."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> Translations:
    """The gettext translations of ``language``, read from its ``.po`` file once.

    Babel's ``Translations`` reads the binary ``.mo`` form; the catalogue is
    converted in memory so that only the editable ``.po`` is shipped.
    """
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    with catalogue_path(language).open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def _accepted(header: str) -> list[str]:
    """Primary language subtags of an ``Accept-Language`` header, by preference."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary and quality > 0:
            ranked.append((-quality, position, primary))
    return [primary for _, _, primary in sorted(ranked)]


def requested_language(request: web.Request) -> str | None:
    """The language asked for with ``?lang=``, when it is one the console speaks."""
    asked = request.query.get(LANG_PARAM, "").strip().lower()
    return asked if asked in LANGUAGES else None


def negotiate(request: web.Request) -> str:
    """The language to answer ``request`` in (see the module's order)."""
    asked = requested_language(request)
    if asked is not None:
        return asked
    remembered = request.cookies.get(LANG_COOKIE, "").strip().lower()
    if remembered in LANGUAGES:
        return remembered
    for primary in _accepted(request.headers.get("Accept-Language", "")):
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE
