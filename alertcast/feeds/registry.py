"""Every feed kind by name, and a guess of the kind from a document's first bytes.

``PARSERS`` maps each kind to its parser. The road kinds (``road-text`` for
CAPUFE-style road posts, ``open511``) live in their own modules and are
imported only when first asked for, so the other kinds work where those
modules are absent; a missing one is simply not in ``PARSERS``.

``detect_kind`` is for ``alertcast parse`` and for suggesting a kind when a
feed is added; a configured feed always says its kind. It sniffs, it does not
parse: it reads at most the first :data:`SNIFF_BYTES` of XML, and parses JSON
only to look at its shape. The order matters:

1. CAP (``<alert>``, an EDXL-DE envelope, an ``<alerts>`` list) → ``cap``;
2. an Atom or RSS feed that shows CAP (a CAP namespace, a CAP media type, a
   link ending in ``.cap`` or ``_cap.xml`` or with a ``/cap/`` segment or a
   ``cap=``/``capID=`` parameter, the word "CAP" in capitals), or an
   api.weather.gov alert collection in GeoJSON → ``cap-index``;
3. the road kinds' own ``looks_like``, ``open511`` first (its documents
   have a precise shape), then ``road-text`` (which also speaks RSS and
   Atom, so it must be asked before the catch-all);
4. any other Atom or RSS feed → ``rss``.

JSON that is a list of feed sources (the IFRC Alert Hub registry of national
CAP feeds) is not a feed document and is refused with a clear reason, as is
anything else no kind recognises.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import structlog

from alertcast.errors import FeedError
from alertcast.feeds.base import FeedParser
from alertcast.feeds.cap_index import CapIndexParser
from alertcast.feeds.cap_single import CapParser
from alertcast.feeds.nws_geojson import is_nws_alert_collection, looks_like_json
from alertcast.feeds.rss import RssParser

log = structlog.get_logger(__name__)

SNIFF_BYTES = 256 * 1024
"""How much of an XML document ``detect_kind`` looks at."""

KINDS: tuple[str, ...] = ("cap", "cap-index", "rss", "road-text", "open511")
"""Every feed kind alertcast knows, whether or not its module is installed."""

_LAZY: dict[str, tuple[str, str]] = {
    "road-text": ("alertcast.feeds.road_text", "RoadTextParser"),
    "open511": ("alertcast.feeds.open511", "Open511Parser"),
}
_DETECTION_ORDER = ("open511", "road-text")

_CAP_ROOTS = frozenset({"alert", "alerts", "EDXLDistribution"})
_FEED_ROOTS = frozenset({"feed", "rss", "RDF"})
_ROOT = re.compile(rb"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")
_CAP_MARKERS = (
    re.compile(rb"urn:oasis:names:tc:emergency:cap:|http://www\.incident\.com/cap/1\.0"),
    re.compile(rb"(?i)application/(?:cap|common-alerting-protocol|x-cap)\+xml"),
    re.compile(rb"(?i)\.cap(?=[?#\"'<\s])|_cap\.xml|/cap/|[?&]cap(?:id)?="),
    re.compile(rb"\bCAP\b"),
)


class _Parsers(Mapping[str, FeedParser]):
    """Kind → parser, importing the road kinds' modules on first use."""

    def __init__(self) -> None:
        self._loaded: dict[str, FeedParser] = {
            "cap": CapParser(),
            "cap-index": CapIndexParser(),
            "rss": RssParser(),
        }
        self._missing: dict[str, str] = {}

    def __getitem__(self, kind: str) -> FeedParser:
        if kind in self._loaded:
            return self._loaded[kind]
        if kind not in _LAZY:
            raise KeyError(kind)
        module_name, class_name = _LAZY[kind]
        try:
            module = importlib.import_module(module_name)
            parser: FeedParser = getattr(module, class_name)()
        except (ImportError, AttributeError) as exc:
            self._missing[kind] = str(exc)
            raise KeyError(kind) from None
        self._loaded[kind] = parser
        return parser

    def __iter__(self) -> Iterator[str]:
        return (kind for kind in KINDS if kind in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def why_missing(self, kind: str) -> str | None:
        return self._missing.get(kind)


PARSERS: _Parsers = _Parsers()
"""Every available feed kind → its parser."""


def parser_for(kind: str) -> FeedParser:
    """The parser of ``kind``; FeedError naming the kinds there are when it has none."""
    try:
        return PARSERS[kind]
    except KeyError:
        pass
    if kind in _LAZY:
        reason = PARSERS.why_missing(kind) or "its module is missing"
        raise FeedError(kind, f"this feed kind is not available in this installation ({reason})")
    raise FeedError(kind, f"not a feed kind; the kinds are {', '.join(KINDS)}")


def detect_kind(data: bytes) -> str:
    """The kind of feed document ``data`` is; FeedError when it is none alertcast reads."""
    if looks_like_json(data):
        return _detect_json(data)
    root = _root_name(data[:SNIFF_BYTES])
    if root in _CAP_ROOTS:
        return "cap"
    if root in _FEED_ROOTS and _shows_cap(data[:SNIFF_BYTES]):
        return "cap-index"
    found = _ask_road_kinds(data)
    if found:
        return found
    if root in _FEED_ROOTS:
        return "rss"
    if root is None:
        if not data.strip(b" \t\r\n\xef\xbb\xbf"):
            raise FeedError("document", "the document is empty")
        raise FeedError("document", "neither XML nor JSON: no feed kind reads it")
    raise FeedError(
        "document",
        f"an XML document with root <{root}> is not a feed kind alertcast knows"
        " (CAP, an Atom or RSS index, RSS bulletins, Open511, road posts)",
    )


def _detect_json(data: bytes) -> str:
    try:
        document: Any = json.loads(data)
    except (ValueError, RecursionError):
        document = None  # JSON lines (road posts) are not one JSON document
    if document is not None:
        if is_nws_alert_collection(document):
            return "cap-index"
        registry = _feed_registry_size(document)
        if registry is not None:
            raise FeedError(
                "document",
                f"a registry of {registry} CAP feed sources (IFRC Alert Hub), not a feed"
                " document; use it to choose feeds to configure",
            )
    found = _ask_road_kinds(data)
    if found:
        return found
    raise FeedError(
        "document",
        "JSON that no feed kind recognises (an api.weather.gov alert collection, Open511"
        " or road posts)",
    )


def _feed_registry_size(document: Any) -> int | None:
    """How many sources a list of feed-source records names (IFRC ``capAlertFeed``), else None."""
    if not isinstance(document, list) or not document:
        return None
    if all(isinstance(entry, dict) and "capAlertFeed" in entry for entry in document):
        return len(document)
    return None


def _ask_road_kinds(data: bytes) -> str | None:
    for kind in _DETECTION_ORDER:
        looks_like = _looks_like(kind)
        if looks_like is None:
            continue
        try:
            if looks_like(data):
                return kind
        except Exception:  # a sniffer's bug must not stop detection, nor go unnoticed
            log.warning("feed.sniffer_failed", kind=kind, exc_info=True)
    return None


def _looks_like(kind: str) -> Callable[[bytes], bool] | None:
    module_name, _ = _LAZY[kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    function = getattr(module, "looks_like", None)
    return function if callable(function) else None


def _root_name(head: bytes) -> str | None:
    """The local name of the first element, past BOM, declaration, comments and DOCTYPE."""
    text = head
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", "replace").encode("utf-8")
    text = text.removeprefix(b"\xef\xbb\xbf")
    position = 0
    while True:
        start = text.find(b"<", position)
        if start < 0:
            return None
        if text.startswith(b"<?", start):
            end = text.find(b"?>", start)
        elif text.startswith(b"<!--", start):
            end = text.find(b"-->", start)
        elif text.startswith(b"<!", start):
            end = _doctype_end(text, start)
        else:
            match = _ROOT.match(text, start)
            return match.group(2).decode("ascii") if match else None
        if end < 0:
            return None
        position = end + 1


def _doctype_end(text: bytes, start: int) -> int:
    """The end of ``<!DOCTYPE ...>``, skipping an internal subset in brackets."""
    bracket = text.find(b"[", start)
    close = text.find(b">", start)
    if 0 <= bracket < close:
        subset_end = text.find(b"]", bracket)
        return -1 if subset_end < 0 else text.find(b">", subset_end)
    return close


def _shows_cap(head: bytes) -> bool:
    return any(marker.search(head) for marker in _CAP_MARKERS)
