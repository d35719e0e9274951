"""Strict mode and the OASIS XSDs agree, on systematically broken variants of valid alerts.

Each fixture is mutated one element at a time (removed, duplicated, swapped
with its neighbour, emptied, re-cased, padded with spaces, given an
attribute, stray text, an unknown child or a foreign namespace) and every
variant is judged twice: by lxml with the bundled XSD of its namespace,
loaded here straight from the files, and by ``parse_cap(strict=True)``.

They must agree, with two documented exceptions where strict mode is
stricter than the schema on purpose: an empty identifier or sender (the
schema's xs:string allows it; an alert without identity cannot be handled)
and the date-time form inside ``<references>`` (an xs:string to the schema;
a reference that cannot be matched to its target is a real problem). And
whatever the variant, lenient mode returns warnings exactly when strict mode
refuses, and raises nothing but CapError.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree

from alertcast.cap import parse_cap
from alertcast.errors import CapError

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "cap"
SCHEMAS = {
    "urn:oasis:names:tc:emergency:cap:1.2": REPO / "alertcast" / "schemas" / "CAP-v1.2.xsd",
    "urn:oasis:names:tc:emergency:cap:1.1": REPO / "alertcast" / "schemas" / "CAP-v1.1.xsd",
    "http://www.incident.com/cap/1.0": REPO / "alertcast" / "schemas" / "CAP-v1.0.xsd",
}
STRICTER_ON_PURPOSE = {
    ("empty", "identifier"),
    ("empty", "sender"),
    ("lowercase", "references"),
}

Mutation = Callable[[etree._Element], bool]


def _tag_of(node: etree._Element) -> object:
    """Comments and processing instructions have a function as their tag."""
    return node.tag


def _is_leaf(element: etree._Element) -> bool:
    return not any(isinstance(child.tag, str) for child in element)


def _remove(element: etree._Element) -> bool:
    parent = element.getparent()
    if parent is None:
        return False
    parent.remove(element)
    return True


def _duplicate(element: etree._Element) -> bool:
    if element.getparent() is None:
        return False
    element.addnext(copy.deepcopy(element))
    return True


def _swap_next(element: etree._Element) -> bool:
    following = element.getnext()
    while following is not None and not isinstance(_tag_of(following), str):
        following = following.getnext()
    if following is None:
        return False
    following.addnext(element)
    return True


def _text(change: Callable[[str], str]) -> Mutation:
    def mutate(element: etree._Element) -> bool:
        if not _is_leaf(element) or element.getparent() is None:
            return False
        before = element.text or ""
        element.text = change(before)
        return element.text != before or before == ""

    return mutate


def _attribute(element: etree._Element) -> bool:
    element.set("lang", "en")
    return True


def _stray_text(element: etree._Element) -> bool:
    if _is_leaf(element):
        return False
    element.text = "stray"
    return True


def _unknown_child(element: etree._Element) -> bool:
    if _is_leaf(element):
        return False
    namespace = etree.QName(element).namespace
    element.insert(0, etree.Element(f"{{{namespace}}}extra" if namespace else "extra"))
    return True


def _foreign_namespace(element: etree._Element) -> bool:
    element.tag = f"{{urn:example:other}}{etree.QName(element).localname}"
    return True


MUTATIONS: dict[str, Mutation] = {
    "remove": _remove,
    "duplicate": _duplicate,
    "swap": _swap_next,
    "empty": _text(lambda _: ""),
    "lowercase": _text(str.lower),
    "uppercase": _text(str.upper),
    "pad": _text(lambda text: f" {text} "),
    "attribute": _attribute,
    "stray": _stray_text,
    "unknown_child": _unknown_child,
    "foreign_namespace": _foreign_namespace,
}


def variants(data: bytes) -> Iterator[tuple[str, str, bytes]]:
    """(mutation, element name, document) for every applicable mutation of every element."""
    count = sum(1 for _ in etree.fromstring(data).iter(etree.Element))
    for index in range(count):
        for name, mutate in MUTATIONS.items():
            root = etree.fromstring(data)
            target = list(root.iter(etree.Element))[index]
            local = etree.QName(target).localname
            if mutate(target):
                yield name, local, etree.tostring(root, encoding="UTF-8")


def schema_says_valid(data: bytes, schemas: dict[str, etree.XMLSchema]) -> bool:
    root = etree.fromstring(data)
    schema = schemas.get(etree.QName(root).namespace or "")
    return schema is not None and schema.validate(root)


@pytest.fixture(scope="module")
def schemas() -> dict[str, etree.XMLSchema]:
    return {ns: etree.XMLSchema(etree.parse(str(path))) for ns, path in SCHEMAS.items()}


@pytest.mark.parametrize("fixture", ["full_12.xml", "cap11_minimal_info.xml", "cap10_flat.xml"])
def test_strict_agrees_with_the_schema_on_every_variant(
    fixture: str, schemas: dict[str, etree.XMLSchema]
) -> None:
    original = (FIXTURES / fixture).read_bytes()
    assert schema_says_valid(original, schemas)
    disagreements = []
    judged = 0
    for mutation, element, data in variants(original):
        judged += 1
        valid = schema_says_valid(data, schemas)
        try:
            parse_cap(data, strict=True)
            accepted = True
        except CapError:
            accepted = False
        try:
            warned = bool(parse_cap(data).warnings)
        except CapError:
            warned = True
        assert warned is not accepted, f"{mutation} {element}: lenient and strict disagree"
        if accepted and not valid:
            disagreements.append(f"{mutation} <{element}>: strict accepts what the XSD rejects")
        if valid and not accepted and (mutation, element) not in STRICTER_ON_PURPOSE:
            disagreements.append(f"{mutation} <{element}>: strict rejects what the XSD accepts")
    assert judged > 100
    assert disagreements == []


def test_the_exceptions_are_real_and_only_stricter(schemas: dict[str, etree.XMLSchema]) -> None:
    original = (FIXTURES / "full_12.xml").read_bytes()
    found = set()
    for mutation, element, data in variants(original):
        if (mutation, element) in STRICTER_ON_PURPOSE:
            assert schema_says_valid(data, schemas)
            with pytest.raises(CapError):
                parse_cap(data, strict=True)
            found.add((mutation, element))
    assert found == STRICTER_ON_PURPOSE
