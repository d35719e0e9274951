"""The ``cap-index`` feed kind: an Atom or RSS list of alerts, CAP embedded or linked.

Issuers publish their alerts in two ways, often mixed in one feed:

* **embedded**: the whole CAP ``<alert>`` sits in the entry, inside
  ``<content type="text/xml">`` (SASMEX, which sends CAP 1.1 inline; Pelmorex
  NAADS; Google's AMBER sample) or as a child element of the entry in a CAP
  namespace. It is read by the CAP codec on the spot.
* **linked**: the entry points at the CAP document (SMN, NWS, MeteoAlarm,
  USGS). The batch then carries a :class:`LinkedDocument` per distinct URL and
  the poller fetches each once. The link is chosen in this order: a
  ``<link>`` whose type is a CAP media type, a link whose path ends in
  ``.xml`` or ``.cap``, the entry id when it is an http(s) URL, and finally
  the entry's main link (RSS ``<link>``, Atom ``rel="alternate"``) unless it
  is typed as HTML, since in a feed configured as a CAP index every entry
  stands for an alert.

An embedded alert wins over a link. When the embedded CAP cannot be read, or
is an Alert or Update without any ``<info>`` (the fragment of index fields
some NWS indexes wrap in ``<alert>``), the link is followed instead, with a
warning; without a link the entry is an error. One bad entry is an error line
in the batch and never hides the good entries beside it.

**Index fields.** MeteoAlarm and the old NWS indexes repeat CAP fields in
each entry (``cap:identifier``, ``cap:sent``, ``cap:event``, ``cap:expires``,
``cap:status``, ``cap:msgType`` or MeteoAlarm's ``cap:message_type``,
``cap:areaDesc``, ``cap:geocode``...), and Pelmorex writes them as
``<category term="severity=Minor"/>``. They are not enough to make an alert
(MeteoAlarm gives no sender, NWS no identifier), and the linked document is
the authority, so they travel as :class:`IndexHints` on an
:class:`IndexedLink`, a ``LinkedDocument`` the poller can use unchanged and
that lets it skip a document it already holds or one that has expired.

**What the index lists.** ``listed`` holds, per entry, the key of the
embedded alert (``str(alert.key)``) or the URL of the linked document, the
two things the poller can match against what it stored. ``complete`` is true
only for an index that is the issuer's whole list of active alerts: when the
feed says so with ``mapping.complete = true``, or, unless it says
``false``, for publishers known to work that way (the NWS CAP server's
``alerts.weather.gov`` indexes, the MeteoAlarm producer and the
api.weather.gov active-alert collections). A batch with any entry error is
never complete: an alert whose entry could not be read this time must not be
taken for withdrawn.

**Link safety.** Nothing in a document may make alertcast read a local file
or call a server the operator did not choose. A link is resolved against
``xml:base`` and the feed's URL, must then be absolute ``http`` or ``https``
without user information, and must point at the feed URL's own host or at a
host the feed's ``allowed_hosts`` lists (``"*.example.org"`` for a domain
and every host under it): the same rule the fetcher applies to redirects, so
a link the parser lets through is one the poller may fetch. Pelmorex, for
one, serves its index and its CAP documents from different hosts and needs
``allowed_hosts = ["*.naad-adna.pelmorex.com"]``. A refused link is an error
line for its entry. A document read without any feed URL (as ``alertcast
parse`` reads files) has its links listed unrestricted, because nothing is
ever fetched from that reading. The XML itself goes through the hardened
loader of ``alertcast.cap_xml`` (no DTD, no entities, no network, no
XInclude), so the document cannot reach anything either.

The api.weather.gov GeoJSON form of an active-alert list is a variant of
this kind (``alertcast.feeds.nws_geojson``).
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree

from alertcast.cap_reader import split_tag
from alertcast.cap_values import collapse, read_datetime
from alertcast.cap_xml import DEFAULT_MAX_DEPTH, load_xml
from alertcast.config import FeedConfig
from alertcast.domain import CAP_NAMESPACES, MsgType, NamedValue
from alertcast.errors import CapError, FeedError
from alertcast.feeds import nws_geojson
from alertcast.feeds.base import FeedBatch, FeedItem, LinkedDocument
from alertcast.feeds.cap_single import cap_items, mapping_flag
from alertcast.feeds.hosts import host_matches

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
ATOM03_NAMESPACE = "http://purl.org/atom/ns#"
RSS10_NAMESPACE = "http://purl.org/rss/1.0/"
DC_NAMESPACE = "http://purl.org/dc/elements/1.1/"

CAP_MEDIA_TYPES = frozenset(
    {"application/cap+xml", "application/common-alerting-protocol+xml", "application/x-cap+xml"}
)
"""Link types that announce a CAP document."""

_CAP_ROOTS = frozenset({"alert", "alerts", "EDXLDistribution"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_COMPLETE_GENERATORS = ("NWS CAP Server", "Meteoalarm Producer Server")
_HINT_RENAMES = {"message_type": "msgType", "msgtype": "msgType"}


@dataclass(frozen=True, slots=True)
class IndexHints:
    """What an index entry itself says about the alert it links to.

    ``fields`` keeps every CAP-namespace child of the entry (and Pelmorex's
    ``key=value`` categories) as name/value pairs in document order: a
    child with structure contributes ``"geocode.FIPS6"``-style names.
    ``identifier``, ``sent``, ``expires`` and ``msg_type`` are read out of
    them for the poller's convenience (None when absent or unreadable).
    """

    identifier: str | None = None
    sent: datetime | None = None
    expires: datetime | None = None
    msg_type: MsgType | None = None
    fields: tuple[NamedValue, ...] = ()

    def get(self, name: str) -> str | None:
        """The first field called ``name``, or None."""
        return next((f.value for f in self.fields if f.name == name), None)


@dataclass(frozen=True, slots=True)
class IndexedLink(LinkedDocument):
    """A linked CAP document together with the index's own fields about it."""

    hints: IndexHints | None = None


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    """Which linked URLs this feed may send the poller to (see the module docstring)."""

    base: str | None
    """The feed's URL, when it is http(s): relative links are resolved against it."""
    hosts: tuple[str, ...] | None
    """Allowed host patterns; None means any host (nothing is fetched from this reading)."""

    @classmethod
    def for_feed(cls, feed: FeedConfig) -> LinkPolicy:
        allowed: Any = getattr(feed, "allowed_hosts", ())
        if not isinstance(allowed, tuple | list) or not all(isinstance(h, str) for h in allowed):
            raise FeedError(feed.name, "allowed_hosts must be a list of host names")
        extra = tuple(h.lower().rstrip(".") for h in allowed)
        if not feed.url:
            return cls(base=None, hosts=extra or None)
        parts = urlsplit(feed.url)
        if parts.scheme.lower() in ("http", "https"):
            own = (parts.hostname or "").lower()
            return cls(base=feed.url, hosts=((own,) if own else ()) + extra)
        return cls(base=None, hosts=extra)

    def check(self, href: str, xml_base: str | None) -> str:
        """The absolute URL for ``href``, or ValueError saying why it may not be followed."""
        text = href.strip()
        if not text:
            raise ValueError("the link is empty")
        if xml_base and urlsplit(xml_base).scheme.lower() in ("http", "https"):
            text = urljoin(urljoin(self.base or "", xml_base), text)
        elif self.base:
            text = urljoin(self.base, text)
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if not scheme:
            raise ValueError(f"link {href!r} is relative and the feed has no URL to resolve it")
        if scheme not in ("http", "https"):
            raise ValueError(f"link {text!r} uses '{scheme}:'; only http and https are followed")
        if parts.username is not None or parts.password is not None:
            raise ValueError(f"link {text!r} carries user information; refused")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise ValueError(f"link {text!r} names no host")
        if self.hosts is not None and not any(host_matches(host, p) for p in self.hosts):
            raise ValueError(
                f"link {text!r} points at {host}, which is neither the feed's host nor in its"
                " allowed_hosts (add it there if it is trusted)"
            )
        return text


# --------------------------------------------------------------------------- the parser


class CapIndexParser:
    """Kind ``cap-index``: Atom 1.0 (and 0.3), RSS 2.0 and 1.0, and api.weather.gov GeoJSON."""

    kind = "cap-index"

    def parse(self, data: bytes, feed: FeedConfig) -> FeedBatch:
        """The batch for one fetched index; FeedError when the document is unreadable."""
        strict = mapping_flag(feed, "strict", default=False)
        complete_setting = feed.mapping.get("complete")
        if complete_setting is not None and not isinstance(complete_setting, bool):
            raise FeedError(feed.name, "mapping.complete must be true or false")
        policy = LinkPolicy.for_feed(feed)
        if nws_geojson.looks_like_json(data):
            return nws_geojson.parse(data, feed, complete=complete_setting)
        try:
            document = load_xml(
                data, strict=strict, max_bytes=feed.max_bytes, max_depth=DEFAULT_MAX_DEPTH
            )
        except CapError as exc:
            raise FeedError(feed.name, exc.reason) from None
        reading = _IndexReading(feed, policy, strict=strict)
        reading.warnings.extend((*document.warnings, *document.notices))
        entries, publisher_complete = _entries(document.root, feed)
        for number, entry in enumerate(entries, start=1):
            reading.read_entry(number, entry)
        if not entries:
            reading.warnings.append("the index has no entries")
            if any(split_tag(el.tag)[1] in _CAP_ROOTS for el in _descendants(document.root)):
                reading.warnings.append(
                    "a CAP alert outside any entry was ignored: only entries are read"
                )
        complete = publisher_complete if complete_setting is None else complete_setting
        if complete and reading.errors:
            reading.warnings.append(
                f"{len(reading.errors)} entries could not be read, so this index is not taken"
                " as the complete list of active alerts this time"
            )
            complete = False
        return FeedBatch(
            items=tuple(reading.items),
            links=tuple(reading.links.values()),
            errors=tuple(reading.errors),
            warnings=tuple(reading.warnings),
            listed=tuple(dict.fromkeys(reading.listed)),
            complete=complete,
        )


def _entries(root: etree._Element, feed: FeedConfig) -> tuple[list[etree._Element], bool]:
    """The entry elements, and whether the publisher is known to list all its active alerts."""
    namespace, local = split_tag(root.tag)
    if local == "feed" and namespace in (ATOM_NAMESPACE, ATOM03_NAMESPACE):
        entries = [child for child in _elements(root) if child.tag == f"{{{namespace}}}entry"]
        generator = _text(root.find(f"{{{namespace}}}generator"))
        return entries, generator in _COMPLETE_GENERATORS
    if local == "rss" and namespace is None:
        channel = root.find("channel")
        if channel is None:
            raise FeedError(feed.name, "the RSS document has no <channel>")
        generator = _text(channel.find("generator"))
        return channel.findall("item"), generator in _COMPLETE_GENERATORS
    if local == "RDF":
        items = [child for child in _elements(root) if child.tag == f"{{{RSS10_NAMESPACE}}}item"]
        return items, False
    if local in _CAP_ROOTS:
        raise FeedError(
            feed.name, "this is a CAP document, not an index of alerts; use kind = 'cap'"
        )
    where = f" in namespace {namespace!r}" if namespace else ""
    raise FeedError(
        feed.name,
        f"not an Atom or RSS index: the root element is <{local}>{where};"
        f" Atom is <feed> in {ATOM_NAMESPACE!r}, RSS is <rss>",
    )


@dataclass(frozen=True, slots=True)
class _Link:
    href: str
    rel: str
    type: str
    base: str | None


@dataclass
class _IndexReading:
    """What has been gathered from the entries so far."""

    feed: FeedConfig
    policy: LinkPolicy
    strict: bool
    items: list[FeedItem] = field(default_factory=list)
    links: dict[str, LinkedDocument] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    _keys: set[str] = field(default_factory=set)

    def read_entry(self, number: int, entry: etree._Element) -> None:
        where = f"entry {number}"
        entry_id = _entry_id(entry)
        try:
            embedded = self._embedded(entry, where)
        except (CapError, _FragmentError) as exc:
            try:
                fallback = self._link(entry, entry_id)
            except _NoLinkError:
                self.errors.append(f"{where}: {_describe(exc)}, and the entry has no link")
                return
            except ValueError as refused:
                self.errors.append(f"{where}: {_describe(exc)}; {refused}")
                return
            self.warnings.append(f"{where}: {_describe(exc)}; its link is followed instead")
            self._add_link(fallback, entry, entry_id)
            return
        if embedded:
            for item in embedded:
                key = str(item.alert.key)
                self.listed.append(key)
                if key not in self._keys:
                    self._keys.add(key)
                    self.items.append(item)
            return
        try:
            url = self._link(entry, entry_id)
        except ValueError as exc:
            self.errors.append(f"{where}: {exc}")
            return
        self._add_link(url, entry, entry_id)

    def _embedded(self, entry: etree._Element, where: str) -> list[FeedItem]:
        documents = _embedded_documents(entry)
        items: list[FeedItem] = []
        for document in documents:
            found = cap_items(document, strict=self.strict, max_bytes=self.feed.max_bytes)
            for item in found:
                alert = item.alert
                if not alert.infos and alert.msg_type in (MsgType.ALERT, MsgType.UPDATE):
                    raise _FragmentError(
                        f"the embedded <alert> is an {alert.msg_type.value} without any <info>,"
                        " a fragment rather than an alert"
                    )
            items.extend(
                FeedItem(
                    alert=item.alert,
                    raw=item.raw,
                    warnings=tuple(f"{where}: {w}" for w in item.warnings),
                    cap_version=item.cap_version,
                )
                for item in found
            )
        return items

    def _link(self, entry: etree._Element, entry_id: str | None) -> str:
        candidates = _links(entry)
        href, base = _choose_link(candidates, entry_id)
        if href is None:
            raise _NoLinkError("no CAP alert is embedded and no link points at one")
        return self.policy.check(href, base)

    def _add_link(self, url: str, entry: etree._Element, entry_id: str | None) -> None:
        self.listed.append(url)
        if url in self.links:
            return
        self.links[url] = IndexedLink(
            url=url,
            entry_id=entry_id or url,
            updated=_entry_updated(entry),
            hints=_hints(entry),
        )


class _NoLinkError(ValueError):
    """The entry has no link that could lead to a CAP document."""


class _FragmentError(Exception):
    """An embedded ``<alert>`` that is only a wrapper around index fields."""


def _describe(exc: Exception) -> str:
    if isinstance(exc, CapError):
        return f"the embedded CAP cannot be read: {exc}"
    return str(exc)


# --------------------------------------------------------------------------- entry fields


def _elements(parent: etree._Element) -> Iterator[etree._Element]:
    """The child elements of ``parent``, without comments and processing instructions."""
    for child in parent:
        tag: object = child.tag
        if isinstance(tag, str):
            yield child


def _descendants(root: etree._Element) -> Iterator[etree._Element]:
    for element in root.iter():
        tag: object = element.tag
        if isinstance(tag, str):
            yield element


def _children(element: etree._Element, local: str) -> Iterable[etree._Element]:
    """Children called ``local`` in the Atom, RSS 1.0 or no namespace (whatever the prefix)."""
    for child in _elements(element):
        namespace, name = split_tag(child.tag)
        if name == local and namespace in (
            None,
            ATOM_NAMESPACE,
            ATOM03_NAMESPACE,
            RSS10_NAMESPACE,
        ):
            yield child


def _child_text(element: etree._Element, local: str) -> str | None:
    for child in _children(element, local):
        text = _text(child)
        if text:
            return text
    return None


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    text = collapse(etree.tostring(element, method="text", encoding="unicode", with_tail=False))
    return text or None


def _entry_id(entry: etree._Element) -> str | None:
    return _child_text(entry, "id") or _child_text(entry, "guid") or _child_text(entry, "link")


def _entry_updated(entry: etree._Element) -> datetime | None:
    """When the entry last changed, as the poller's hint to refetch; None when not stated."""
    for name in ("updated", "published", "pubDate", "modified", "issued"):
        when = _parse_when(_child_text(entry, name))
        if when is not None:
            return when
    for child in _elements(entry):
        if child.tag == f"{{{DC_NAMESPACE}}}date":
            return _parse_when(_text(child))
    return None


def _parse_when(text: str | None) -> datetime | None:
    """An ISO 8601 or RFC 822 time with an offset; None for anything else."""
    if not text:
        return None
    value, problem = read_datetime(text)
    if value is not None and (problem is None or "no UTC offset" not in problem):
        return value
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # RFC 822 "-0000": the time is UTC, the place unknown
        return parsed.replace(tzinfo=UTC)
    return parsed


def _embedded_documents(entry: etree._Element) -> list[bytes]:
    """CAP documents inside the entry: in ``<content>`` or as CAP-namespace children."""
    documents: list[bytes] = []
    for child in _elements(entry):
        namespace, local = split_tag(child.tag)
        if local == "alert" and namespace in CAP_NAMESPACES:
            documents.append(_serialise(child))
        elif local in ("content", "encoded") and namespace not in CAP_NAMESPACES:
            inner = list(_elements(child))
            documents.extend(_serialise(el) for el in inner if split_tag(el.tag)[1] in _CAP_ROOTS)
            text = (child.text or "").strip()
            if not inner and text.startswith("<") and _mentions_cap(text):
                documents.append(text.encode("utf-8"))
    return documents


def _mentions_cap(text: str) -> bool:
    return any(ns in text for ns in CAP_NAMESPACES) or "<alert" in text


def _serialise(element: etree._Element) -> bytes:
    """The element as a document of its own, with the namespaces it inherited."""
    return etree.tostring(element, encoding="unicode", with_tail=False).encode("utf-8")


def _links(entry: etree._Element) -> list[_Link]:
    links: list[_Link] = []
    for child in _children(entry, "link"):
        href = child.get("href")
        base = child.base
        if href is not None:  # Atom
            links.append(
                _Link(href, (child.get("rel") or "alternate"), child.get("type") or "", base)
            )
        elif child.text and child.text.strip():  # RSS
            links.append(_Link(child.text.strip(), "alternate", "", base))
    for child in _children(entry, "content"):
        src = child.get("src")
        if src:  # Atom out-of-line content: the document lives at src
            links.append(_Link(src, "content", child.get("type") or "", child.base))
    for child in _children(entry, "enclosure"):
        url = child.get("url")
        if url:
            links.append(_Link(url, "enclosure", child.get("type") or "", child.base))
    return links


def _choose_link(links: Sequence[_Link], entry_id: str | None) -> tuple[str | None, str | None]:
    """The href of the linked CAP document and the xml:base it sits under (module docstring)."""
    for link in links:
        if link.type.split(";")[0].strip().lower() in CAP_MEDIA_TYPES:
            return link.href, link.base
    for link in links:
        path = urlsplit(link.href.strip()).path.lower()
        if path.endswith((".xml", ".cap")) and not _is_html(link) and link.rel != "self":
            return link.href, link.base
    if entry_id and urlsplit(entry_id).scheme.lower() in ("http", "https"):
        return entry_id, None
    for link in links:
        if link.rel == "alternate" and not _is_html(link):
            return link.href, link.base
    return None, None


def _is_html(link: _Link) -> bool:
    return link.type.split(";")[0].strip().lower() in _HTML_TYPES


def _hints(entry: etree._Element) -> IndexHints | None:
    """The CAP fields an index entry repeats (MeteoAlarm, NWS, Pelmorex categories)."""
    fields: list[NamedValue] = []
    for child in _elements(entry):
        namespace, local = split_tag(child.tag)
        if namespace in CAP_NAMESPACES and local != "alert":
            fields.extend(_hint_fields(_HINT_RENAMES.get(local.lower(), local), child))
        elif local == "category" and "=" in (child.get("term") or ""):
            name, _, value = (child.get("term") or "").partition("=")
            if name.strip() and value.strip():
                fields.append(NamedValue(name.strip(), value.strip()))
    if not fields:
        return None
    hints = IndexHints(fields=tuple(fields))
    msg_type_text = hints.get("msgType")
    msg_type = next((m for m in MsgType if m.value.lower() == (msg_type_text or "").lower()), None)
    sent = hints.get("sent")
    expires = hints.get("expires")
    return IndexHints(
        identifier=hints.get("identifier"),
        sent=read_datetime(sent)[0] if sent else None,
        expires=read_datetime(expires)[0] if expires else None,
        msg_type=msg_type,
        fields=hints.fields,
    )


def _hint_fields(name: str, element: etree._Element) -> list[NamedValue]:
    parts = list(_elements(element))
    if not parts:
        text = _text(element)
        return [NamedValue(name, text)] if text else []
    fields: list[NamedValue] = []
    pending: str | None = None
    for part in parts:
        local = split_tag(part.tag)[1]
        text = _text(part) or ""
        if local == "valueName":
            pending = text
        elif local == "value" and pending is not None:
            if text:
                fields.append(NamedValue(f"{name}.{pending}", text))
            pending = None
        elif text:
            fields.append(NamedValue(f"{name}.{local}", text))
    return fields
