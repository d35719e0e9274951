"""An independent check of Telegram HTML, written from Telegram's documentation.

It shares no code with ``alertcast.text_safety`` on purpose: a test that
checked the renderer's output with the renderer's own parser would agree with
any bug in it. Telegram's rules (Bot API, "HTML style"): only the tags b,
strong, i, em, u, ins, s, strike, del, span class="tg-spoiler", tg-spoiler,
a href, code, pre, blockquote; tags must be closed and properly nested;
``<``, ``>`` and ``&`` that are not part of a tag or an entity must be
escaped; the only named entities are ``&lt; &gt; &amp; &quot;``, numeric
entities are all accepted.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

ALLOWED = {
    "b": set(),
    "strong": set(),
    "i": set(),
    "em": set(),
    "u": set(),
    "ins": set(),
    "s": set(),
    "strike": set(),
    "del": set(),
    "tg-spoiler": set(),
    "span": {"class"},
    "a": {"href"},
    "code": {"class"},
    "pre": set(),
    "blockquote": {"expandable"},
}
NAMED_ENTITIES = {"lt", "gt", "amp", "quot"}
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);")


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.errors: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED:
            self.errors.append(f"tag <{tag}> not allowed")
            return
        for name, _ in attrs:
            if name not in ALLOWED[tag]:
                self.errors.append(f"attribute {name} not allowed on <{tag}>")
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.errors.append(f"self-closing <{tag}/> not allowed")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> does not match {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        for ch in "<>&":
            if ch in data:
                self.errors.append(f"unescaped {ch!r} in text {data[:30]!r}")

    def handle_entityref(self, name: str) -> None:
        if name not in NAMED_ENTITIES:
            self.errors.append(f"entity &{name}; not supported")

    def handle_charref(self, name: str) -> None:
        code = int(name[1:], 16) if name[:1] in "xX" else int(name)
        if code == 0 or code > 0x10FFFF:
            self.errors.append(f"&#{name}; is not a character")

    def handle_comment(self, data: str) -> None:
        self.errors.append("comments are not allowed")

    def handle_decl(self, decl: str) -> None:
        self.errors.append("declarations are not allowed")

    def handle_pi(self, data: str) -> None:
        self.errors.append("processing instructions are not allowed")

    def unknown_decl(self, data: str) -> None:
        self.errors.append("CDATA is not allowed")


def telegram_errors(html: str) -> list[str]:
    """Why Telegram would refuse ``html``; empty when it parses."""
    checker = _Checker()
    checker.feed(html)
    checker.close()
    errors = list(checker.errors)
    if checker.rawdata:
        errors.append(f"unparsed trailing text {checker.rawdata[:30]!r}")
    if checker.stack:
        errors.append(f"unclosed tags {checker.stack}")
    # A bare '&' followed by a name but no ';' is read as an entity by HTMLParser.
    for match in re.finditer("&", html):
        if not _ENTITY.match(html, match.start()):
            errors.append(f"'&' without an entity at {match.start()}")
    return errors
