"""What each kind of channel can carry, and how its providers count.

A render must fit the hard limit of the channel it is for, measured the way
the provider measures, or the provider refuses it (or cuts it wherever it
likes, which may be the instruction). The defaults below are the providers'
documented limits; a channel's ``[options]`` can override them, for example a
Mastodon instance with a longer limit or an SMS contract that joins more
segments.

How each kind counts:

* ``sms``: segments, per GSM 03.38 (:mod:`alertcast.sms`); ``max_segments``
  (default 3); ``transliterate`` (default true: a Spanish text with one
  ``á`` is otherwise sent in UCS-2, and three segments hold 201 characters
  instead of 459; the text is only transliterated when that saves segments).
* ``telegram``: 4,096 per message. Telegram counts the text left after
  parsing the HTML, in UTF-16 code units; the HTML source is counted here
  instead, also in UTF-16 units, which is never less, so a message that fits
  here fits there. ``split`` ("split", the default, or "truncate") and
  ``max_messages`` (default 4) say what happens to a longer text.
* ``x``: 280 weighted characters per twitter-text configuration v3: code
  points in U+0000–U+10FF, U+2000–U+200D, U+2010–U+201F and U+2032–U+2037
  weigh 1, everything else 2, and a URL 23 whatever its length. Each code
  point of an emoji sequence is weighed on its own (X counts a whole
  sequence as 2), which can only over-count.
* ``mastodon``: 500 characters unless the instance says otherwise
  (``max_chars``); a URL with a scheme counts 23 (``url_length``). Mastodon
  counts grapheme clusters; code points are counted here, never fewer.
* ``bluesky``: 300 graphemes and 3,000 UTF-8 bytes per post; links are
  shortened for display and carried as facets with UTF-8 byte offsets.
* ``facebook``: 63,206 characters per post.
* ``whatsapp``: free text up to 4,096 characters inside the 24-hour session
  window; outside it, an approved template (``template_name``,
  ``template_language``) whose variables are limited (``max_variable_chars``,
  default 200 each).
* ``email``: a subject of at most ``max_subject_chars`` (150), text and HTML
  bodies without limit.
* ``webhook``, ``cap``, ``console``, ``file``: no length limit.

A URL is recognised as X and Mastodon do: a scheme (or, on X, a bare domain)
and a known top-level domain. A bare domain is weighed as the larger of its
own weight and 23, so that whichever way X decides, the count is never low.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from alertcast.errors import ConfigProblem

__all__ = [
    "CHANNEL_KINDS",
    "ChannelProfile",
    "find_urls",
    "grapheme_clusters",
    "profile_for",
    "profile_problems",
    "utf16_length",
    "x_weighted_length",
]

Markup = Literal["text", "html"]

CHANNEL_KINDS: tuple[str, ...] = (
    "sms",
    "telegram",
    "x",
    "mastodon",
    "bluesky",
    "facebook",
    "whatsapp",
    "email",
    "webhook",
    "cap",
    "console",
    "file",
)
"""Every channel kind :func:`alertcast.render.render` knows how to render for."""

DEFAULT_LANGUAGE = "es-MX"
DEFAULT_FALLBACK_LANGUAGES: tuple[str, ...] = ("es", "en")


@dataclass(frozen=True, slots=True)
class ChannelProfile:
    """Everything a render needs to know about one channel: its kind, limits and options."""

    kind: str
    name: str
    max_length: int | None
    """In the kind's own unit (segments for SMS, weighted characters for X...); None: no limit."""
    markup: Markup = "text"
    language: str = DEFAULT_LANGUAGE
    fallback_languages: tuple[str, ...] = DEFAULT_FALLBACK_LANGUAGES
    alert_url: str | None = None
    """Public page of an alert; ``{identifier}`` and ``{sender}`` are filled in."""
    template: str | None = None
    """A template name this channel always uses, instead of choosing one from the alert."""
    split: bool = False
    max_messages: int = 1
    transliterate: bool = False
    url_length: int = 23
    max_bytes: int | None = None
    max_subject_chars: int = 150
    whatsapp_template: str = "alerta_emergencia"
    whatsapp_template_language: str | None = None
    """None: the language of the rendered text (es → es_MX, en → en_US)."""
    max_variable_chars: int = 200
    escape_markdown: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)


_DEFAULTS: dict[str, dict[str, Any]] = {
    "sms": {"max_length": 3, "transliterate": True},
    "telegram": {"max_length": 4096, "markup": "html", "split": True, "max_messages": 4},
    "x": {"max_length": 280},
    "mastodon": {"max_length": 500},
    "bluesky": {"max_length": 300, "max_bytes": 3000},
    "facebook": {"max_length": 63206},
    "whatsapp": {"max_length": 4096},
    "email": {"max_length": None},
    "webhook": {"max_length": None},
    "cap": {"max_length": None},
    "console": {"max_length": None},
    "file": {"max_length": None},
}

_LENGTH_OPTION = {
    "sms": "max_segments",
    "telegram": "max_chars",
    "x": "max_chars",
    "mastodon": "max_chars",
    "bluesky": "max_graphemes",
    "facebook": "max_chars",
    "whatsapp": "max_chars",
}
"""The option that overrides ``max_length``, per kind."""

_HARD_CEILING = {"telegram": 4096, "bluesky": 300, "whatsapp": 4096, "sms": 255}
"""Limits an option may lower but not raise: the provider refuses anything longer."""

_FLOOR = {"telegram": 100}
"""Below this a message cannot hold the status prefix, a link tag and its closing tags."""

_COMMON_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "language": str,
    "fallback_languages": list,
    "alert_url": str,
    "template": str,
}
_KIND_OPTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "sms": {"max_segments": int, "transliterate": bool},
    "telegram": {"max_chars": int, "split": str, "max_messages": int},
    "x": {"max_chars": int, "url_length": int},
    "mastodon": {"max_chars": int, "url_length": int},
    "bluesky": {"max_graphemes": int},
    "facebook": {"max_chars": int},
    "whatsapp": {
        "max_chars": int,
        "template_name": str,
        "template_language": str,
        "max_variable_chars": int,
    },
    "email": {"max_subject_chars": int},
    "webhook": {"markdown": bool},
}


def profile_for(
    channel: str | Any,
    options: Mapping[str, Any] | None = None,
) -> ChannelProfile:
    """The profile of a channel kind (``"sms"``) or of a configured channel.

    ``channel`` is a kind name or anything with ``name``, ``kind`` and
    ``options`` (a :class:`alertcast.config.ChannelConfig`). ``options``, when
    given, are laid over the channel's own. Options of the wrong type are
    ignored here; :func:`profile_problems` reports them at check time.
    Raises ValueError for an unknown kind.
    """
    if isinstance(channel, str):
        kind, name, merged = channel, channel, dict(options or {})
    else:
        kind, name = channel.kind, channel.name
        merged = {**dict(channel.options), **dict(options or {})}
    if kind not in _DEFAULTS:
        known = ", ".join(CHANNEL_KINDS)
        raise ValueError(f"{kind!r} is not a channel kind alertcast can render for ({known})")
    values: dict[str, Any] = dict(_DEFAULTS[kind])
    length_option = _LENGTH_OPTION.get(kind)
    if length_option and _typed(merged, length_option, int):
        wanted = int(merged[length_option])
        if wanted >= _FLOOR.get(kind, 1):
            values["max_length"] = min(wanted, _HARD_CEILING.get(kind, wanted))
    if _typed(merged, "language", str) and merged["language"].strip():
        values["language"] = merged["language"].strip()
    fallback = merged.get("fallback_languages")
    if isinstance(fallback, list) and all(isinstance(x, str) for x in fallback):
        values["fallback_languages"] = tuple(fallback)
    for option in ("alert_url", "template"):
        if _typed(merged, option, str) and merged[option].strip():
            values[option] = merged[option].strip()
    if kind == "sms" and _typed(merged, "transliterate", bool):
        values["transliterate"] = merged["transliterate"]
    if kind == "telegram":
        if merged.get("split") in ("split", "truncate"):
            values["split"] = merged["split"] == "split"
        if _typed(merged, "max_messages", int) and merged["max_messages"] > 0:
            values["max_messages"] = merged["max_messages"]
    if kind in ("x", "mastodon") and _typed(merged, "url_length", int):
        values["url_length"] = max(1, merged["url_length"])
    if kind == "whatsapp":
        if _typed(merged, "template_name", str):
            values["whatsapp_template"] = merged["template_name"]
        if _typed(merged, "template_language", str):
            values["whatsapp_template_language"] = merged["template_language"]
        if _typed(merged, "max_variable_chars", int) and merged["max_variable_chars"] > 0:
            values["max_variable_chars"] = merged["max_variable_chars"]
    if kind == "email" and _typed(merged, "max_subject_chars", int):
        values["max_subject_chars"] = max(20, merged["max_subject_chars"])
    if kind == "webhook" and _typed(merged, "markdown", bool):
        values["escape_markdown"] = merged["markdown"]
    return ChannelProfile(kind=kind, name=name, options=merged, **values)


def _typed(options: Mapping[str, Any], key: str, kind: type) -> bool:
    value = options.get(key)
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def profile_problems(channel: Any) -> list[ConfigProblem]:
    """Problems with the rendering options of one configured channel, each with file and key.

    Only options this module reads are checked; others belong to the channel's
    sender and are left to it.
    """
    file = str(channel.file)
    problems: list[ConfigProblem] = []
    if channel.kind not in _DEFAULTS:
        return problems
    known = {**_COMMON_OPTIONS, **_KIND_OPTIONS.get(channel.kind, {})}
    for key, expected in known.items():
        if key not in channel.options:
            continue
        value = channel.options[key]
        kinds = expected if isinstance(expected, tuple) else (expected,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            problems.append(
                ConfigProblem(
                    file, f"options.{key}", f"must be {names}, not {type(value).__name__}"
                )
            )
            continue
        problems.extend(_value_problems(file, channel.kind, key, value))
    return problems


def _value_problems(file: str, kind: str, key: str, value: Any) -> list[ConfigProblem]:
    where = f"options.{key}"
    if key == _LENGTH_OPTION.get(kind):
        ceiling = _HARD_CEILING.get(kind)
        floor = _FLOOR.get(kind, 1)
        if value < floor:
            return [ConfigProblem(file, where, f"must be at least {floor}, not {value}")]
        if ceiling is not None and value > ceiling:
            return [ConfigProblem(file, where, f"{kind} accepts at most {ceiling}, not {value}")]
    if key in ("max_messages", "max_variable_chars", "url_length") and value < 1:
        return [ConfigProblem(file, where, f"must be at least 1, not {value}")]
    if key == "max_subject_chars" and value < 20:
        return [ConfigProblem(file, where, f"must be at least 20, not {value}")]
    if key == "split" and value not in ("split", "truncate"):
        return [ConfigProblem(file, where, f"must be 'split' or 'truncate', not {value!r}")]
    if key == "fallback_languages" and not all(isinstance(x, str) and x for x in value):
        return [ConfigProblem(file, where, "must be a list of language tags such as 'es-MX'")]
    if key == "alert_url" and not re.match(r"^https?://[^\s/]+\S*$", value):
        return [ConfigProblem(file, where, "must be an http:// or https:// address")]
    return []


# --------------------------------------------------------------------------- measuring


def utf16_length(text: str) -> int:
    """UTF-16 code units: what Telegram, WhatsApp and JavaScript clients count."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


_GENERIC_TLDS = (
    "com net org edu gov mil int info biz name pro aero coop museum mobi travel jobs tel asia cat "
    "xxx post app dev io ai co me tv news online site website web blog page link live tech "
    "cloud shop store club health care earth global world city agency email mail gob"
)
_COUNTRY_TLDS = (
    "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br "
    "bs bt bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz "
    "ec ee eg er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu "
    "gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr "
    "kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt "
    "mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps "
    "pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz "
    "tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf "
    "ws ye yt za zm zw"
)
_TLDS = frozenset((_GENERIC_TLDS + " " + _COUNTRY_TLDS).split())

_URL = re.compile(
    r"(?<![\w@.\-/])"
    r"(?P<scheme>https?://)?"
    r"(?P<host>(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+(?P<tld>[a-z]{2,24}))"
    r"(?P<rest>(?::\d{1,5})?(?:[/?#][^\s<>\"]*)?)",
    re.IGNORECASE,
)
_URL_TRAILING = ".,:;!?'\")]}"


@dataclass(frozen=True, slots=True)
class FoundUrl:
    """A URL inside a text: where it is and whether it had a scheme."""

    start: int
    end: int
    url: str
    has_scheme: bool


def find_urls(text: str, *, require_scheme: bool = False) -> list[FoundUrl]:
    """URLs as X and Mastodon recognise them: known TLD, trailing punctuation left out."""
    found: list[FoundUrl] = []
    for match in _URL.finditer(text):
        if match.group("tld").lower() not in _TLDS:
            continue
        has_scheme = match.group("scheme") is not None
        if require_scheme and not has_scheme:
            continue
        url = match.group(0)
        while url and url[-1] in _URL_TRAILING:
            # A closing bracket belongs to the URL only when the URL opened it.
            if url[-1] in ")]}" and url.count(url[-1]) <= url.count("([{"[")]}".index(url[-1])]):
                break
            url = url[:-1]
        found.append(FoundUrl(match.start(), match.start() + len(url), url, has_scheme))
    return found


_WEIGHT_ONE = re.compile("[\u0000-\u10ff\u2000-\u200d\u2010-\u201f\u2032-\u2037]+")
"""Code points X weighs 1: U+0000–U+10FF, U+2000–U+200D, U+2010–U+201F, U+2032–U+2037."""


def _x_weight(text: str) -> int:
    heavy = len(_WEIGHT_ONE.sub("", text))
    return len(text) + heavy


def x_weighted_length(text: str, *, url_length: int = 23) -> int:
    """The length X counts against its 280 limit (see the module's notes)."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    position = 0
    for url in find_urls(text):
        total += _x_weight(text[position : url.start])
        own = _x_weight(url.url)
        total += url_length if url.has_scheme else max(own, url_length)
        position = url.end
    return total + _x_weight(text[position:])


def mastodon_length(text: str, *, url_length: int = 23) -> int:
    """Mastodon's count: code points, a URL with a scheme as ``url_length``."""
    total = 0
    position = 0
    for url in find_urls(text, require_scheme=True):
        total += len(text[position : url.start]) + url_length
        position = url.end
    return total + len(text[position:])


# --------------------------------------------------------------------------- graphemes


def _hangul_kind(code: int) -> str:
    if 0x1100 <= code <= 0x115F or 0xA960 <= code <= 0xA97C:
        return "L"
    if 0x1160 <= code <= 0x11A7 or 0xD7B0 <= code <= 0xD7C6:
        return "V"
    if 0x11A8 <= code <= 0x11FF or 0xD7CB <= code <= 0xD7FB:
        return "T"
    if 0xAC00 <= code <= 0xD7A3:
        return "LV" if (code - 0xAC00) % 28 == 0 else "LVT"
    return ""


def _is_extend(ch: str) -> bool:
    code = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or code == 0x200C
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
        or 0xFF9E <= code <= 0xFF9F
    )


def _is_pictographic(ch: str) -> bool:
    code = ord(ch)
    return (
        0x1F000 <= code <= 0x1FAFF
        or 0x2600 <= code <= 0x27BF
        or 0x2300 <= code <= 0x23FF
        or 0x2B00 <= code <= 0x2BFF
        or code in (0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D)
    )


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


_PREPEND = frozenset({0x0600, 0x0601, 0x0602, 0x0603, 0x0604, 0x0605, 0x06DD, 0x070F, 0x08E2})
_HANGUL_JOINS = {
    ("L", "L"),
    ("L", "V"),
    ("L", "LV"),
    ("L", "LVT"),
    ("LV", "V"),
    ("LV", "T"),
    ("V", "V"),
    ("V", "T"),
    ("LVT", "T"),
    ("T", "T"),
}


_BREAKING = ("Cc", "Zl", "Zp")


def _joins(previous: str, ch: str, emoji_zwj_pending: bool, regional_count: int) -> bool:
    """Whether ``ch`` continues the cluster that ends with ``previous`` (UAX #29 rules)."""
    if previous == "\r" and ch == "\n":
        return True
    if unicodedata.category(previous) in _BREAKING or unicodedata.category(ch) in _BREAKING:
        return False
    if (_hangul_kind(ord(previous)), _hangul_kind(ord(ch))) in _HANGUL_JOINS:
        return True
    if _is_extend(ch) or ch == "\u200d" or ord(previous) in _PREPEND:
        return True
    if emoji_zwj_pending and _is_pictographic(ch):
        return True
    if _is_regional_indicator(previous) and _is_regional_indicator(ch):
        return regional_count % 2 == 1
    return False


def grapheme_clusters(text: str) -> list[str]:
    """Split ``text`` into user-perceived characters (extended grapheme clusters).

    A practical implementation of UAX #29 without its data files: CR LF, the
    Hangul syllable rules, combining marks (categories Mn, Mc, Me) and the
    other Extend characters (ZWNJ, emoji modifiers, tag characters,
    variation selectors, which are Mn), emoji ZWJ sequences, regional
    indicator pairs (flags) and the Arabic prepended concatenation marks.
    Known limits: Extended_Pictographic is approximated by the emoji blocks,
    and the Indic conjunct rule (GB9c, Unicode 15.1) is not applied, so a
    conjunct may count as two clusters. Both can only over-count, which keeps
    a length check on the safe side.
    """
    clusters: list[str] = []
    current = ""
    previous = ""
    special = {ch for ch in set(text) if _may_join(ch)}
    emoji_zwj_pending = False  # ExtPict Extend* ZWJ seen: the next ExtPict joins (GB11)
    in_emoji = False
    regional_count = 0
    for ch in text:
        if not current:
            current, previous = ch, ch
            in_emoji = _is_pictographic(ch)
            regional_count = 1 if _is_regional_indicator(ch) else 0
            continue
        if ch in special or previous in special:
            join = _joins(previous, ch, emoji_zwj_pending, regional_count)
        else:
            join = False
        if join:
            current += ch
        else:
            clusters.append(current)
            current = ch
            in_emoji = False
            regional_count = 0
        if _is_pictographic(ch):
            in_emoji = True
        emoji_zwj_pending = in_emoji and ch == "\u200d"
        if in_emoji and not (_is_pictographic(ch) or _is_extend(ch) or ch == "\u200d"):
            in_emoji = False
        regional_count = regional_count + 1 if _is_regional_indicator(ch) else 0
        previous = ch
    if current:
        clusters.append(current)
    return clusters


def _may_join(ch: str) -> bool:
    """Whether ``ch`` can take part in a cluster of more than one code point."""
    return (
        ch in "\r\u200d"
        or _is_extend(ch)
        or _is_pictographic(ch)
        or _is_regional_indicator(ch)
        or bool(_hangul_kind(ord(ch)))
        or ord(ch) in _PREPEND
    )


def grapheme_length(text: str) -> int:
    """How many user-perceived characters ``text`` has (see :func:`grapheme_clusters`)."""
    if text.isascii():
        return len(text) - text.count("\r\n")
    if not any(_may_join(ch) for ch in set(text)):
        return len(text)
    return len(grapheme_clusters(text))


def measure(profile: ChannelProfile, text: str) -> int:
    """The length of ``text`` in the unit ``profile.max_length`` is given in (not SMS)."""
    kind = profile.kind
    if kind == "x":
        return x_weighted_length(text, url_length=profile.url_length)
    if kind == "mastodon":
        return mastodon_length(text, url_length=profile.url_length)
    if kind == "bluesky":
        return grapheme_length(text)
    if kind in ("telegram", "whatsapp"):
        return utf16_length(text)
    return len(text)


def language_candidates(profile: ChannelProfile, language: str | None) -> Sequence[str]:
    """The audience's language first, then the channel's fallback order, without repeats."""
    ordered = [language or profile.language, *profile.fallback_languages]
    return list(dict.fromkeys(tag for tag in ordered if tag))
