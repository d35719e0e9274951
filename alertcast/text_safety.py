"""Neutralising text that comes from outside feeds, per channel.

Everything an issuer wrote (headline, description, instruction, area names,
parameters) is untrusted: a feed can carry ``<b>``, ``&``, Markdown markers,
``@everyone``, right-to-left overrides that make "evacuate" read backwards,
zero-width characters that hide words from filters, or control characters
that break a provider's API. Before any of it reaches a template it goes
through :func:`neutralise`, which:

1. removes C0/C1 control characters (a newline is kept where the field may
   have several lines, tabs become spaces), bidirectional embeddings,
   overrides and isolates (U+202A–U+202E, U+2066–U+2069), zero-width and other
   invisible format characters (U+200B–U+200D, U+2060, U+FEFF, soft hyphens,
   Hangul fillers...). Kept on purpose: the left-to-right, right-to-left and
   Arabic letter marks (U+200E, U+200F, U+061C), which Arabic and Hebrew text
   needs and which cannot reorder anything beyond neutral punctuation; a
   zero-width joiner *between two pictographs*, which is what makes an emoji
   ZWJ sequence one symbol; tag characters after a black flag (subdivision
   flags). Runs of combining marks are capped so a "zalgo" string cannot blow
   up a byte budget behind a single visible character;
2. normalises whitespace (single spaces, at most one blank line);
3. applies the channel's own defences: mentions are defused on channels that
   notify people on ``@name`` (the ``@`` that starts a mention becomes U+FE6B
   SMALL COMMERCIAL AT, which reads the same to people and is not a mention
   sigil for X, Mastodon, Bluesky, Facebook, Telegram, Discord or Slack — the
   fullwidth ``＠`` would not do, X treats it as ``@``); WhatsApp's formatting
   markers, for which its API has no escape, become look-alikes
   (``*`` → ``∗``, ``_`` → ``ˍ``, ``~`` → ``∼``, ````` → ``ˋ``).

HTML escaping is not done here but by the template engine's autoescape (and
:func:`escape_html` for the few pieces built in code), so a value is escaped
exactly once, at the point where it enters markup.
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

__all__ = [
    "MENTION_CHANNELS",
    "TELEGRAM_TAGS",
    "defuse_mentions",
    "escape_html",
    "escape_markdown",
    "neutralise",
    "neutralise_whatsapp_markup",
    "strip_invisible",
    "telegram_html_problems",
]

MENTION_CHANNELS = frozenset(
    {"x", "mastodon", "bluesky", "facebook", "telegram", "whatsapp", "webhook"}
)
"""Channel kinds where ``@name`` notifies or links someone."""

_BIDI_CONTROLS = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))
_ZERO_WIDTH = frozenset({0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF})
_KEPT_FORMAT = frozenset({0x200E, 0x200F, 0x061C})
_INVISIBLE_LETTERS = frozenset({0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, 0x180E})
_ZWJ = "\u200d"
_BLACK_FLAG = "\U0001f3f4"
_MAX_COMBINING_RUN = 8
_LINE_BREAKS = {"\r\n": "\n", "\r": "\n", "\u2028": "\n", "\u2029": "\n\n", "\x85": "\n"}


def _is_pictograph(ch: str) -> bool:
    code = ord(ch)
    return (
        0x1F000 <= code <= 0x1FAFF
        or 0x2600 <= code <= 0x27BF
        or 0x2300 <= code <= 0x23FF
        or 0x2B00 <= code <= 0x2BFF
        or code in (0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D)
    )


def _is_emoji_tail(ch: str) -> bool:
    """A character that may stand between a pictograph and a ZWJ (VS16, skin tone)."""
    code = ord(ch)
    return code == 0xFE0F or 0x1F3FB <= code <= 0x1F3FF


_PLAIN = re.compile("[\n\u0020-\u007e\u00a0-\u00ac\u00ae-\u00ff]*")


def strip_invisible(text: str, *, multiline: bool = True) -> str:
    """``text`` without control, bidi-override, zero-width and other invisible characters.

    Newlines survive when ``multiline`` (CR LF, CR, U+2028 become ``\\n``);
    otherwise every line break becomes a space. Tabs become spaces.
    """
    for old, new in _LINE_BREAKS.items():
        text = text.replace(old, new)
    if _PLAIN.fullmatch(text):
        # Printable Latin-1 only (the common case): nothing to remove.
        return text if multiline else text.replace("\n", " ")
    out: list[str] = []
    combining_run = 0
    length = len(text)
    for index, ch in enumerate(text):
        code = ord(ch)
        if ch == "\n":
            out.append("\n" if multiline else " ")
            combining_run = 0
            continue
        if ch == "\t":
            out.append(" ")
            continue
        if code < 0x20 or 0x7F <= code <= 0x9F:
            continue
        if code in _BIDI_CONTROLS or code in _INVISIBLE_LETTERS:
            continue
        if ch == _ZWJ:
            before = out[-1] if out else ""
            after = text[index + 1] if index + 1 < length else ""
            joins_emoji = (
                bool(before)
                and (_is_pictograph(before) or _is_emoji_tail(before))
                and bool(after)
                and _is_pictograph(after)
            )
            if joins_emoji:
                out.append(ch)
            continue
        if code in _ZERO_WIDTH:
            continue
        category = unicodedata.category(ch)
        if 0xE0020 <= code <= 0xE007F:
            # Tag characters only spell subdivision flags, right after a black flag.
            if out and (out[-1] == _BLACK_FLAG or 0xE0020 <= ord(out[-1]) <= 0xE007F):
                out.append(ch)
            continue
        if category == "Cf" and code not in _KEPT_FORMAT:
            continue
        if category == "Cs" or _is_noncharacter(code):
            continue
        if category in ("Mn", "Me"):
            combining_run += 1
            if combining_run > _MAX_COMBINING_RUN:
                continue
        else:
            combining_run = 0
        out.append(ch)
    return "".join(out)


def _is_noncharacter(code: int) -> bool:
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*(?:\n\s*)*")


def normalise_whitespace(text: str, *, multiline: bool = True) -> str:
    """Single spaces, no trailing spaces, at most one blank line; stripped at both ends."""
    text = _SPACES.sub(" ", text)
    if not multiline:
        return text.strip()
    lines = [line.strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


_MENTION = re.compile(r"(?<!\w)[@＠](?=\w)")
_SMALL_AT = "\ufe6b"


def defuse_mentions(text: str) -> str:
    """Turn every ``@`` that would start a mention (``@everyone``, ``@here``, ``@user``) harmless.

    E-mail addresses are left alone: their ``@`` follows a letter, which no
    platform reads as a mention.
    """
    return _MENTION.sub(_SMALL_AT, text)


_WHATSAPP_MARKUP = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})


def neutralise_whatsapp_markup(text: str) -> str:
    """Replace WhatsApp's formatting markers by look-alikes (its API has no escape)."""
    return text.translate(_WHATSAPP_MARKUP)


_MARKDOWN_SPECIAL = re.compile(r"([\\_*\[\]()~`>#+\-=|{}.!])")


def escape_markdown(text: str) -> str:
    """Backslash-escape every Markdown (and Telegram MarkdownV2) control character."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def escape_html(text: str, *, quote: bool = True) -> str:
    """Escape ``&``, ``<``, ``>`` (and ``"`` for attribute values) with named entities.

    Only the four named entities Telegram accepts are produced.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;") if quote else text


def neutralise(text: str | None, channel_kind: str, *, multiline: bool = True) -> str:
    """Everything :mod:`alertcast.text_safety` promises, for one piece of feed text."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    text = normalise_whitespace(strip_invisible(text, multiline=multiline), multiline=multiline)
    if channel_kind in MENTION_CHANNELS:
        text = defuse_mentions(text)
    if channel_kind == "whatsapp":
        text = neutralise_whatsapp_markup(text)
    return text


# --------------------------------------------------------------------------- Telegram HTML

TELEGRAM_TAGS: dict[str, frozenset[str]] = {
    "b": frozenset(),
    "strong": frozenset(),
    "i": frozenset(),
    "em": frozenset(),
    "u": frozenset(),
    "ins": frozenset(),
    "s": frozenset(),
    "strike": frozenset(),
    "del": frozenset(),
    "tg-spoiler": frozenset(),
    "span": frozenset({"class"}),
    "a": frozenset({"href"}),
    "code": frozenset({"class"}),
    "pre": frozenset(),
    "blockquote": frozenset({"expandable"}),
}
"""Tags (and their attributes) that Telegram's HTML parse mode accepts."""

_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:=\"[^\"<>]*\")?)*)\s*>")
_ATTRIBUTE = re.compile(r"([a-zA-Z-]+)(?:=\"([^\"<>]*)\")?")


def telegram_html_problems(html: str) -> list[str]:
    """Why Telegram would refuse ``html`` in HTML parse mode; empty when it is acceptable.

    Checks: only Telegram's tags and attributes, tags balanced and properly
    nested, every ``&`` starting one of the entities Telegram knows, no bare
    ``<`` or ``>``, and numeric entities that name a real character.
    """
    problems: list[str] = []
    stack: list[str] = []
    index = 0
    length = len(html)
    while index < length:
        ch = html[index]
        if ch == "<":
            match = _TAG.match(html, index)
            if match is None:
                problems.append(f"offset {index}: '<' that does not start a tag")
                index += 1
                continue
            closing, name, attributes = match.group(1), match.group(2).lower(), match.group(3)
            if name not in TELEGRAM_TAGS:
                problems.append(f"offset {index}: tag <{name}> is not supported by Telegram")
            elif closing:
                if not stack or stack[-1] != name:
                    problems.append(f"offset {index}: </{name}> does not close the open tag")
                else:
                    stack.pop()
            else:
                for attribute in _ATTRIBUTE.finditer(attributes):
                    if attribute.group(1).lower() not in TELEGRAM_TAGS[name]:
                        problems.append(
                            f"offset {index}: <{name}> does not take {attribute.group(1)!r}"
                        )
                    elif attribute.group(2) is not None:
                        problems.extend(
                            f"offset {index}: in an attribute, {problem}"
                            for problem in _entity_problems(attribute.group(2))
                        )
                stack.append(name)
            index = match.end()
            continue
        if ch == ">":
            problems.append(f"offset {index}: bare '>'")
        elif ch == "&":
            problems.extend(f"offset {index}: {p}" for p in _entity_problems(html[index:], 1))
            entity = _ENTITY.match(html, index)
            if entity is not None:
                index = entity.end()
                continue
        index += 1
    if stack:
        problems.append(f"unclosed tag(s): {', '.join(stack)}")
    return problems


def _entity_problems(text: str, limit: int | None = None) -> list[str]:
    problems = []
    found = 0
    for position, ch in enumerate(text):
        if ch != "&":
            if ch in "<>":
                problems.append(f"bare {ch!r}")
            continue
        entity = _ENTITY.match(text, position)
        if entity is None:
            problems.append("'&' that does not start an entity Telegram knows")
        elif entity.group(0).startswith("&#"):
            body = entity.group(0)[2:-1]
            code = int(body[1:], 16) if body[:1] in "xX" else int(body)
            if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                problems.append(f"entity {entity.group(0)} is not a character")
        found += 1
        if limit is not None and found >= limit:
            break
    return problems


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """The visible text of an HTML fragment (tags dropped, entities decoded)."""
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)
