"""Bytes to an XML tree, defensively: the only place where alertcast lets libxml2 see a feed.

CAP arrives from the network, often from systems nobody here controls, and an
XML parser is a classic way in: entities that expand to gigabytes, external
entities that read ``/etc/passwd`` or make the server fetch a URL, nesting
deep enough to exhaust a stack. Everything is therefore decided before or
instead of trusting the parser:

* the size is checked before a single byte is parsed;
* a document that declares entities is refused outright (CAP never needs
  them, and refusing is simpler to reason about than expanding them safely);
* the parser never resolves entities, never loads a DTD, never touches the
  network, and keeps libxml2's limits on text size and nesting (no
  ``huge_tree``); on top of that a configurable depth limit applies;
* every failure becomes a :class:`CapError` a duty officer can read.

Invalid UTF-8 is an error in strict mode. In lenient mode the bad bytes are
replaced with U+FFFD and a warning says where the first one was: a whole
alert should not be lost to one mis-encoded accent, and the replacement
character makes the damage visible instead of guessing another encoding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from alertcast.errors import CapError

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
"""Largest document read by default. Real alerts with embedded audio stay well under 1 MiB."""

DEFAULT_MAX_DEPTH = 32
"""Deepest element nesting read by default; a signed CAP inside EDXL-DE needs about 10."""

LIBXML2_MAX_DEPTH = 256
"""libxml2 refuses deeper documents whatever ``max_depth`` says (``huge_tree`` stays off)."""

_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
_XML_WHITESPACE = b" \t\r\n"
_DECLARED_ENCODING = re.compile(
    rb"<\?xml\s[^>]*?encoding\s*=\s*[\"']([A-Za-z][A-Za-z0-9._\-]*)[\"']", re.ASCII
)
_UTF8_NAMES = frozenset({"utf8", "utf-8"})


@dataclass
class XmlDocument:
    """A parsed document and what was noticed about it before looking at CAP."""

    root: etree._Element
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def load_xml(data: bytes, *, strict: bool, max_bytes: int, max_depth: int) -> XmlDocument:
    """Parse ``data`` into a tree or raise :class:`CapError`; never reads anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"CAP documents are bytes, not {type(data).__name__}")
    if max_depth < 1:
        raise ValueError("max_depth must be at least 1")
    size = memoryview(data).nbytes
    if size > max_bytes:
        raise CapError(
            f"the document is {size:,} bytes, more than the limit of {max_bytes:,};"
            " it was not read",
            "/",
        )
    data = bytes(data)
    warnings: list[str] = []
    notices: list[str] = []
    wide = data.startswith(_UTF16_32_BOMS) or data[:2] in (b"\x00<", b"<\x00")
    if not wide:
        data = _strip_leading_whitespace(data, notices)
        if not data.strip(_UTF8_BOM + _XML_WHITESPACE):
            raise CapError("the document is empty", "/")
        data = _check_utf8(data, strict=strict, warnings=warnings)
    _refuse_entity_declarations(data, wide=wide)
    root = _parse(data)
    _check_doctype(root, warnings)
    _check_depth(root, max_depth)
    return XmlDocument(root, warnings, notices)


def _strip_leading_whitespace(data: bytes, notices: list[str]) -> bytes:
    """Drop whitespace before the first ``<``, which transports add and XML forbids."""
    bom = _UTF8_BOM if data.startswith(_UTF8_BOM) else b""
    body = data[len(bom) :]
    stripped = body.lstrip(_XML_WHITESPACE)
    if len(stripped) != len(body):
        if stripped.startswith(b"<?xml"):
            notices.append("/: whitespace before the XML declaration was removed")
        return bom + stripped
    return data


def _check_utf8(data: bytes, *, strict: bool, warnings: list[str]) -> bytes:
    """Make sure a document meant to be UTF-8 is; see the module docstring for the lenient rule."""
    declared = _DECLARED_ENCODING.match(data[len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0 :])
    if declared is not None and declared.group(1).decode("ascii").lower() not in _UTF8_NAMES:
        return data
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = (
            f"byte {exc.start} ({data[exc.start : exc.start + 1].hex()}) is not valid UTF-8;"
            " declare the real encoding in the XML declaration"
        )
        if strict:
            raise CapError(reason, "/") from None
        warnings.append(f"/: {reason}; invalid bytes were replaced with U+FFFD")
        return data.decode("utf-8", "replace").encode("utf-8")
    return data


def _refuse_entity_declarations(data: bytes, *, wide: bool) -> None:
    """Refuse ``<!ENTITY`` before parsing: no expansion, no external fetch, no file read."""
    text = data
    if wide:
        for bom, codec in (
            (b"\x00\x00\xfe\xff", "utf-32"),
            (b"\xff\xfe\x00\x00", "utf-32"),
            (b"\xff\xfe", "utf-16"),
            (b"\xfe\xff", "utf-16"),
        ):
            if data.startswith(bom):
                text = data.decode(codec, "replace").encode("utf-8")
                break
        else:
            codec = "utf-16-be" if data.startswith(b"\x00<") else "utf-16-le"
            text = data.decode(codec, "replace").encode("utf-8")
    if b"<!DOCTYPE" in text and b"<!ENTITY" in text:
        raise CapError(
            "the document declares XML entities (<!ENTITY>); CAP never uses them and"
            " they are refused because they can read local files, reach other servers"
            " or expand to exhaust memory",
            "/",
        )


class _NothingResolver(etree.Resolver):
    """Answers every request for an external resource with nothing.

    The parser options already forbid loading DTDs and network access; this
    makes sure no code path reads a local file either, whatever the options
    do in a given lxml/libxml2 version.
    """

    def resolve(  # type: ignore[override]
        self, system_url: str, public_id: str, context: object
    ) -> Any:
        return self.resolve_string("", context, base_url=None)


def _parser() -> etree.XMLParser:
    """A fresh parser per document: lxml parsers must not be shared between threads.

    ``collect_ids`` stays at its default on purpose: with libxml2 before 2.15,
    lxml implements ``collect_ids=False`` by setting a flag that also makes
    libxml2 load the external DTD subset named in a DOCTYPE.
    """
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        recover=False,
        remove_blank_text=False,
    )
    parser.resolvers.add(_NothingResolver())
    return parser


def _parse(data: bytes) -> etree._Element:
    try:
        return etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise CapError(_syntax_reason(exc), "/") from None
    except (etree.LxmlError, ValueError) as exc:
        raise CapError(f"the document could not be read as XML: {exc}", "/") from None


def _syntax_reason(exc: etree.XMLSyntaxError) -> str:
    message = str(getattr(exc, "msg", "") or exc).strip()
    if "Excessive depth" in message:
        return f"elements are nested more than {LIBXML2_MAX_DEPTH} levels deep; refused"
    if "amplification" in message:
        return "the document expands entities beyond any sane size; refused"
    if message.startswith("Premature end of data") or "EndTag" in message:
        return f"the document ends before its elements are closed (truncated?): {message}"
    return f"the document is not well-formed XML: {message}"


def _check_doctype(root: etree._Element, warnings: list[str]) -> None:
    """A DOCTYPE without entities is harmless here (nothing is loaded) but not CAP."""
    docinfo: Any = root.getroottree().docinfo
    dtd = docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise CapError("the document declares XML entities; refused", "/")
    if not docinfo.doctype and dtd is None:
        return
    if any(True for _ in root.iter(etree.Entity)):
        raise CapError("the document uses XML entity references; refused", "/")
    if docinfo.doctype:
        where = f" naming {docinfo.system_url!r}" if docinfo.system_url else ""
        warnings.append(
            f"/: the document type declaration{where} is not part of CAP;"
            " it was ignored and nothing it names was loaded"
        )


def _check_depth(root: etree._Element, max_depth: int) -> None:
    if max_depth >= LIBXML2_MAX_DEPTH:
        return
    too_deep = root.getroottree().xpath("boolean(" + "/*" * (max_depth + 1) + ")")
    if too_deep:
        raise CapError(f"elements are nested more than {max_depth} levels deep; refused", "/")
