"""How a CAPUFE-style Spanish road post is read: small named rules, in tables.

Mexican toll-road operators (CAPUFE, and the concessionaires and news pages
that copy its style) publish road status as short Spanish posts::

    🟠 CIERRE PARCIAL DE CIRCULACIÓN 🟠
    Autopista La Tinaja - Isla, km 46, dirección Isla. Reducción de carriles
    por atención de accidente (salida del camino a camellón central).
    Maneja con precaución.

The wording is regular enough to read with rules, and irregular enough that
one big regular expression would be unreadable and unfixable. So the reading
is split in two tables of small, named rules that a person can check against
a post:

* ``CLEANING``: rewrites that repair what transports do to posts (emoji lost
  as ``??``, keycap digits ``0⃣7⃣4⃣``, links, hashtags, greetings, the
  "— CAPUFE (@CAPUFE) March 12, 2026" signature of embedded posts);
* the field rules (``ROAD_RULES``, ``KM_RULES``, ``PLACE_RULES``,
  ``DIRECTION_RULES``, ``QUEUE_RULES``, ``CAUSE_RULES``, ``CONDITION_RULES``,
  ``INSTRUCTION_RULE``...): the first rule of a table that matches gives the
  field.

:func:`extract` runs them and returns a :class:`RoadReport`. Nothing here
knows about CAP, feeds or time: the feed kind (``road_text``) turns a report
into an alert. A field the post does not state stays None; nothing is
guessed from outside the post.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

UPPER = "A-ZÁÉÍÓÚÜÑ"
LOWER = "a-záéíóúüñ"

BOTH_DIRECTIONS = "ambos sentidos"
"""The ``direction`` of a report that affects both carriageways."""


class Condition(StrEnum):
    """What the post says about the traffic, from gravest to mildest (``reopened`` ends it)."""

    CLOSED = "closed"
    PARTIALLY_CLOSED = "partially_closed"
    CONTRAFLOW = "contraflow"
    HEAVY_TRAFFIC = "heavy_traffic"
    REOPENED = "reopened"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Rule:
    """A named pattern; its named groups are the fields it gives."""

    name: str
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A named cleaning step: text in, repaired text out."""

    name: str
    apply: Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Queue:
    """A traffic queue: its length in km as written (``13``, ``4.5``) and its direction."""

    km: str
    direction: str | None = None


@dataclass(frozen=True, slots=True)
class RoadReport:
    """What one post says, field by field; None where the post does not say it.

    ``km`` is ``"69"`` or a range ``"16-17"``; ``direction`` is a destination
    as written (``"Isla"``, ``"Ciudad de México"``) or :data:`BOTH_DIRECTIONS`.
    ``road_type`` is the kind of road the post names (``Autopista``, ``Carretera``,
    ``Libramiento``). ``rules`` names the rule that gave each field, for whoever has to explain
    a surprising result.
    """

    header: str | None
    description: str | None
    instruction: str | None
    road: str | None
    road_type: str | None
    km: str | None
    place: str | None
    direction: str | None
    condition: Condition
    cause: str | None
    queues: tuple[Queue, ...]
    is_update: bool
    planned: bool
    rules: tuple[tuple[str, str], ...] = ()

    @property
    def queue_km(self) -> str | None:
        """The longest queue, in km as written: the figure a reader acts on."""
        if not self.queues:
            return None
        return max(self.queues, key=lambda queue: float(queue.km.replace(",", "."))).km

    @property
    def first_sentence(self) -> str | None:
        """The opening sentence of the description (usually the location)."""
        if not self.description:
            return None
        return split_sentences(self.description)[0]


# --------------------------------------------------------------------------- cleaning


def _sub(pattern: str, replacement: str | Callable[[re.Match[str]], str]) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def apply(text: str) -> str:
        return compiled.sub(replacement, text)

    return apply


def _drop_lost_emoji(match: re.Match[str]) -> str:
    # A Spanish question opens with '¿'; a run of '?' with none before it on its
    # line is an emoji a web page could not encode, not punctuation.
    line_start = match.string.rfind("\n", 0, match.start()) + 1
    return match.group(0) if "¿" in match.string[line_start : match.start()] else " "


_KEPT_SYMBOLS = frozenset("°")
_INVISIBLE = frozenset("\ufe0f\ufe0e\u200d\u20e3")


def _drop_emoji(text: str) -> str:
    """Drop pictographs (🟠, 🔴, ☑️, ⚠️, 🚧...) and their joiners; they carry no words."""
    return "".join(
        ch
        for ch in text
        if ch in _KEPT_SYMBOLS
        or (ch not in _INVISIBLE and unicodedata.category(ch) not in ("So", "Cs", "Co"))
    )


def _road_hashtag(match: re.Match[str]) -> str:
    return f"{match.group('kw')} {match.group('a')} - {match.group('b')}"


def _tidy_space(text: str) -> str:
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = re.sub(r" +([,.;:])", r"\1", text)
    return text.strip()


CLEANING: tuple[Rewrite, ...] = (
    Rewrite("keycap_digits", _sub(r"([0-9#*])\ufe0f?\u20e3", r"\1")),
    Rewrite("keycap_ten", _sub("\U0001f51f", "10")),
    Rewrite("links", _sub(r"(?i:https?://|www\.|pic\.twitter\.com/)\S+", " ")),
    Rewrite(
        "embed_signature",
        _sub(r"\s*[—–]\s*[^\n()—–]*\(@\w+\)(?:\s+[A-Z][a-z]+\.?\s+\d{1,2},\s+\d{4})?", " "),
    ),
    Rewrite("leading_mentions", _sub(r"^(?:\s*@\w+)+\s+", "")),
    Rewrite("lost_emoji_runs", _sub(r"\?{2,}", _drop_lost_emoji)),
    Rewrite("lost_emoji_at_line_ends", _sub(r"(?m)^[ \t]*\?[ \t]+|[ \t]+\?[ \t]*$", " ")),
    Rewrite("emoji", _drop_emoji),
    Rewrite(
        "road_hashtag",
        _sub(
            rf"(?P<kw>(?i:autopista|carretera|aut\.))\s+#(?P<a>[{UPPER}][{LOWER}]+)"
            rf"(?P<b>[{UPPER}][{LOWER}]+)\b",
            _road_hashtag,
        ),
    ),
    Rewrite("trailing_hashtags", _sub(r"(?:\s*#\w+)+\s*$", "")),
    Rewrite("hashtag_signs", _sub(r"#(\w)", r"\1")),
    Rewrite("editorial_cuts", _sub(r"\[\s*(?:\.\.\.|…)\s*\]", " ")),
    Rewrite(
        "greeting",
        _sub(
            r"(?m)^[ \t]*¡?(?i:buen(?:os|as)\s+(?:d[ií]as|tardes|noches)|buen\s+d[ií]a|hola"
            r"|saludos)[ \t]*[.!,:]*[ \t]*",
            "",
        ),
    ),
    Rewrite("spacing", _tidy_space),
)
"""Applied in order; each step's name says what it repairs."""


def clean(text: str) -> str:
    """The post's words without transport damage, decoration, links or greeting."""
    for step in CLEANING:
        text = step.apply(text)
    return text


_HEADER = re.compile(
    rf"^(?P<header>[{UPPER}]{{2,}}(?:[ \t]+[{UPPER}]+)*)[.!:]?"
    rf"(?=[ \t]*\n|[ \t]+[{UPPER}][{LOWER}]|\s*$)"
)


def split_header(text: str) -> tuple[str | None, str]:
    """Split an all-capitals opening line ("CARGA VEHICULAR Aut. ...") from the body."""
    match = _HEADER.match(text)
    if match is None:
        return None, text
    return match.group("header"), text[match.end() :].strip()


def _clean_header(header: str) -> str | None:
    # A header is often a hashtag alone ("#AVISO"): keep its word.
    cleaned = clean(re.sub(r"#(\w)", r"\1", header)).strip(" .:!-\n")
    return cleaned or None


# --------------------------------------------------------------------------- sentences

_ABBREVIATIONS = frozenset(
    {"aut", "dir", "carr", "lib", "km", "kms", "no", "núm", "num", "aprox", "av", "blvd", "col"}
    | {"edo", "gral", "sr", "sra", "tel", "ote", "pte"}
)
_SENTENCE_END = re.compile(r"[.!?…]+(?=\s)")
_LAST_WORD = re.compile(r"(\w+)$")


def split_sentences(text: str) -> list[str]:
    """Sentences, not broken after ``Aut.``, ``dir.``, ``km.`` and the like."""
    sentences: list[str] = []
    for paragraph in text.split("\n"):
        start = 0
        for match in _SENTENCE_END.finditer(paragraph):
            word = _LAST_WORD.search(paragraph, start, match.start())
            if match.group(0) == "." and word and word.group(1).lower() in _ABBREVIATIONS:
                continue
            sentences.append(paragraph[start : match.end()].strip())
            start = match.end()
        sentences.append(paragraph[start:].strip())
    return [sentence for sentence in sentences if sentence]


# --------------------------------------------------------------------------- field rules

_STOP = r"(?=\s*(?:[,.;:()\n]|$)|\s+y\s+\d|\s+(?i:por|para|con|en|desde|hasta|debido|sin)\s)"
_PLACE_NAME = rf"(?:[{UPPER}][^,.;:()\n]*?|(?i:norte|sur|oriente|poniente|este|oeste)){_STOP}"
_TOWARDS = r"(?:(?i:a\s+la|al|a|hacia(?:\s+la)?)\s+)?(?:(?i:estado\s+de)\s+)?"
_DIRECTION_WORD = r"(?i:direcci[oó]n\b|dir\.|sentido\b)"
_NUM = r"\d{1,4}(?:\+\d{1,3})?"
_KM_WORD = r"(?i:km|kms|kil[oó]metros?)\.?"


def _rule(name: str, pattern: str) -> Rule:
    return Rule(name, re.compile(pattern))


ROAD_RULES: tuple[Rule, ...] = (
    _rule(
        "road_after_keyword",
        r"(?P<keyword>(?i:\b(?:autopista|carretera|libramiento)\b|\baut\.|\bcarr\.|\blib\.))\s+"
        r"(?P<road>[^,.;:()\n]+?)"
        rf"(?=\s*(?:[,.;:()\n]|$)|\s+(?i:del\s+|entre\s+el\s+|en\s+el\s+)?{_KM_WORD}\s*\d"
        rf"|\s+(?i:en\s+|con\s+)?{_DIRECTION_WORD})",
    ),
)
KM_RULES: tuple[Rule, ...] = (
    _rule(
        "km_range_in_words",
        rf"(?i:\b(?:del|entre\s+(?:el|los))\s+){_KM_WORD}\s*(?P<start>{_NUM})\s+"
        rf"(?i:al?|y|hasta\s+el)\s+(?:(?i:el)\s+)?(?:{_KM_WORD}\s*)?(?P<end>{_NUM})\b",
    ),
    _rule("km_range_dash", rf"\b{_KM_WORD}\s*(?P<start>{_NUM})\s*[-–]\s*(?P<end>{_NUM})\b"),
    _rule("km_single", rf"\b{_KM_WORD}\s*(?P<start>{_NUM})\b"),
)
PLACE_RULES: tuple[Rule, ...] = (
    _rule(
        "named_structure",
        r"(?P<place>\b(?i:plaza\s+de\s+cobro|caseta(?:\s+de\s+cobro)?|entronque|puente"
        r"|t[uú]nel|viaducto|distribuidor\s+vial)\b[^,.;:()\n]*?)(?=\s*(?:[,.;:()\n]|$))",
    ),
)
QUEUE_RULES: tuple[Rule, ...] = (
    _rule(
        "queue_length",
        r"(?P<km>\d+(?:[.,]\d+)?)\s*(?i:km|kil[oó]metros?)\s+"
        r"(?i:de\s+(?:fila|cola|carga\s+vehicular|tr[aá]nsito\s+lento))"
        r"(?:\s+(?i:aproximadamente|aprox\.))?"
        rf"(?:\s+(?i:en\s+|con\s+)?{_DIRECTION_WORD}\s+{_TOWARDS}(?P<direction>{_PLACE_NAME}))?",
    ),
    _rule(
        "queue_length_continued",
        r"(?i:\by)\s+(?P<km>\d+(?:[.,]\d+)?)\s*(?i:km|kil[oó]metros?)"
        r"(?:\s+(?i:de\s+fila))?(?:\s+(?i:aproximadamente))?"
        rf"\s+(?i:en\s+|con\s+)?{_DIRECTION_WORD}\s+{_TOWARDS}(?P<direction>{_PLACE_NAME})",
    ),
)
"""Every match counts (a post may give one queue per direction)."""

DIRECTION_RULES: tuple[Rule, ...] = (
    _rule(
        "stated_direction",
        rf"(?i:\b(?:en\s+|con\s+)?){_DIRECTION_WORD}\s+{_TOWARDS}(?P<direction>{_PLACE_NAME})",
    ),
    _rule(
        "both_directions",
        r"(?P<both>(?i:\bambos\s+sentidos\b|\bambas\s+direcciones\b|\bambos\s+cuerpos\b))",
    ),
)
"""Read after the queues are taken out: "13 km de fila en dirección Isla" is a queue's
direction, not the event's."""

CAUSE_RULES: tuple[Rule, ...] = (
    _rule(
        "cause_after_por",
        r"(?i:\b(?:por|debido\s+a|a\s+causa\s+de|derivado\s+de)\s+)"
        r"(?!(?i:ambos|ambas|favor|lo\s+que|el\s+momento|la\s+zona|la\s+autopista|el\s+carril)\b)"
        r"(?P<cause>(?:[^.,;:()\n]|\([^)\n]*\))+)",
    ),
    _rule(
        "works",
        r"(?P<cause>\b(?i:trabajos|labores|obras)\s+(?i:de)\s+[^.,;:()\n]+?)"
        r"(?=\s+(?i:en|del|desde|entre|a\s+partir)\s|\s*(?:[.,;:()\n]|$))",
    ),
)
CONDITION_RULES: tuple[tuple[Condition, Rule], ...] = (
    (
        Condition.REOPENED,
        _rule(
            "reopened",
            r"(?i:circulaci[oó]n\s+(?:ya\s+)?(?:restablecida|reestablecida|liberada|normal)"
            r"|se\s+(?:restablece|reestablece|libera|reanuda|reabre)\b"
            r"|\breapertura\b|\breabiert[ao]\b|vialidad\s+liberada|circula\s+con\s+normalidad)",
        ),
    ),
    (
        Condition.PARTIALLY_CLOSED,
        _rule(
            "partially_closed",
            r"(?i:\bcierres?\s+parcial(?:es)?\b|reducci[oó]n\s+de\s+carriles?"
            r"|\bcarriles?\s+(?:cerrados?|afectados?)\b|cierre\s+de\s+(?:un|dos|\d)\s+carril"
            r"|circulaci[oó]n\s+(?:por|en)\s+(?:un|1)\s+carril|paso\s+alternado"
            r"|un\s+solo\s+carril)",
        ),
    ),
    (
        Condition.CLOSED,
        _rule(
            "closed",
            r"(?i:\bcierre\s+(?:total\s+)?(?:a|de)\s+(?:la\s+)?circulaci[oó]n|\bcierre\s+total"
            r"|\bcerrad[ao]s?\s+(?:a\s+la\s+circulaci[oó]n|en\s+ambos|totalmente)"
            r"|\bbloqueos?\b|\bsin\s+paso\b|circulaci[oó]n\s+(?:cerrada|suspendida))",
        ),
    ),
    (Condition.CONTRAFLOW, _rule("contraflow", r"(?i:\bcontra\s*flujo\b)")),
    (
        Condition.HEAVY_TRAFFIC,
        _rule(
            "heavy_traffic",
            r"(?i:carga\s+vehicular|tr[aá]nsito\s+(?:lento|intenso)|tr[aá]fico\s+(?:lento|intenso)"
            r"|circulaci[oó]n\s+lenta|\d+\s*km\s+de\s+fila|aforo\s+vehicular)",
        ),
    ),
)
"""The first condition whose rule matches the header or the text wins (gravest first,
except that a reopening wins over the closure it ends). A reopening that keeps lanes
closed ("se restablece la circulación con reducción de carriles") is a partial closure."""

UPDATE_RULE = _rule("update", r"(?i:\bactualizaci[oó]n\b)")
PLANNED_RULE = _rule(
    "planned",
    r"(?i:\bse\s+realizar[aá]n\b|\bhabr[aá]\b|\bse\s+llevar[aá]n\s+a\s+cabo\b|\bse\s+har[aá]n\b"
    r"|\bprogramad[oa]s?\b|\bconcluir[aá]n\b|\biniciar[aá]n\b"
    r"|\ba\s+partir\s+del?\s+(?:pr[oó]ximo|este|\d))",
)
"""Works announced ahead (urgency Future, certainty Likely) rather than observed now."""

INSTRUCTION_RULE = _rule(
    "instruction",
    r"^(?i:toma\s+tus\s+precauciones|maneja\s+con\s+precauci[oó]n|conduce\s+con\s+precauci[oó]n"
    r"|circula\s+con\s+precauci[oó]n|extrema\s+precauciones|evita\b|utiliza\b|usa\s+rutas"
    r"|considera\b|planea\b|te\s+recomendamos|respeta\b|para\s+m[aá]s\s+informaci[oó]n)",
)
"""A sentence that tells the reader what to do goes to CAP ``<instruction>``."""


# --------------------------------------------------------------------------- extraction


_ROAD_TYPES = {
    "autopista": "Autopista",
    "aut": "Autopista",
    "carretera": "Carretera",
    "carr": "Carretera",
    "libramiento": "Libramiento",
    "lib": "Libramiento",
}


def _first(rules: tuple[Rule, ...], text: str) -> tuple[Rule, re.Match[str]] | None:
    for rule in rules:
        match = rule.pattern.search(text)
        if match is not None:
            return rule, match
    return None


def normalise_road(name: str) -> str:
    """``México-Querétaro `` → ``México - Querétaro``: one spelling per road."""
    name = re.sub(r"\s+", " ", name).strip(" -–")
    return re.sub(rf"(?<=[{LOWER}{UPPER}])\s*[-–]\s*(?=[{UPPER}])", " - ", name)


def _clean_value(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip(" ,.;:")


def extract(text: str, header: str | None = None) -> RoadReport:
    """Read one post (its text, and its header line when the source keeps it apart)."""
    body = clean(text)
    detected, rest = split_header(body)
    header_text = _clean_header(header) if header else None
    if detected is not None and (header_text is None or detected.upper() == header_text.upper()):
        header_text, body = detected, rest
    sentences = split_sentences(body)
    instructions = [s for s in sentences if INSTRUCTION_RULE.pattern.search(s)]
    described = [s for s in sentences if s not in instructions]
    description = " ".join(described) or None
    facts = description or ""
    everything = f"{header_text or ''}\n{body}"
    used: list[tuple[str, str]] = []

    def take(field: str, rules: tuple[Rule, ...], group: str, where: str) -> str | None:
        found = _first(rules, where)
        if found is None:
            return None
        used.append((field, found[0].name))
        return _clean_value(found[1].group(group))

    road_text = take("road", ROAD_RULES, "road", facts)
    road = normalise_road(road_text) if road_text else None
    road_type = None
    if road_text is not None:
        found = _first(ROAD_RULES, facts)
        keyword = found[1].group("keyword").lower().rstrip(".") if found else ""
        road_type = _ROAD_TYPES.get(keyword)
    km = _km(facts, used)
    place = take("place", PLACE_RULES, "place", facts)

    queues: list[Queue] = []
    without_queues = facts
    for rule in QUEUE_RULES:
        for match in rule.pattern.finditer(facts):
            direction = match.group("direction")
            queues.append(Queue(match.group("km"), _clean_value(direction) if direction else None))
            without_queues = without_queues.replace(match.group(0), " ")
            used.append(("queue_km", rule.name))
    direction = _direction(without_queues, used)
    cause = take("cause", CAUSE_RULES, "cause", facts)

    condition = Condition.OTHER
    for candidate, rule in CONDITION_RULES:
        if rule.pattern.search(everything):
            condition = candidate
            used.append(("condition", rule.name))
            break
    if condition is Condition.REOPENED and dict(CONDITION_RULES)[
        Condition.PARTIALLY_CLOSED
    ].pattern.search(everything):
        condition = Condition.PARTIALLY_CLOSED
        used.append(("condition", "reopened_with_lanes_closed"))
    planned = condition is not Condition.REOPENED and bool(PLANNED_RULE.pattern.search(facts))

    return RoadReport(
        header=header_text,
        description=description,
        instruction=" ".join(instructions) or None,
        road=road or None,
        road_type=road_type,
        km=km,
        place=place,
        direction=direction,
        condition=condition,
        cause=cause,
        queues=tuple(queues),
        is_update=bool(UPDATE_RULE.pattern.search(everything)),
        planned=planned,
        rules=tuple(used),
    )


def _km(text: str, used: list[tuple[str, str]]) -> str | None:
    found = _first(KM_RULES, text)
    if found is None:
        return None
    rule, match = found
    used.append(("km", rule.name))
    start = match.group("start")
    end = match.groupdict().get("end")
    return f"{start}-{end}" if end and end != start else start


def _direction(text: str, used: list[tuple[str, str]]) -> str | None:
    found = _first(DIRECTION_RULES, text)
    if found is None:
        return None
    rule, match = found
    used.append(("direction", rule.name))
    if match.groupdict().get("both"):
        return BOTH_DIRECTIONS
    return _clean_value(match.group("direction"))


def slug(text: str) -> str:
    """ASCII, lowercase, words joined by ``-``: ``Córdoba - Veracruz`` → ``cordoba-veracruz``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9+]+", "-", ascii_text.lower()).strip("-")


def segment_key(report: RoadReport) -> str | None:
    """The road segment a report is about, so later posts can be linked to earlier ones.

    ``road:<road>[:km<km> | :<place>][:dir-<direction>]``, each part a
    :func:`slug`, so spelling variants meet: ``México-Querétaro`` and
    ``México - Querétaro`` are both ``mexico-queretaro``; ``km 16 al 17``,
    ``del km 16 al km 17`` and ``km 16-17`` are all ``km16-17``. The place
    (a toll plaza, a junction) stands in for the km only when there is no km.
    The direction part is there only for one stated direction: a report on
    both carriageways and one that names none share a key, because CAPUFE
    writes "ambos sentidos" in one post and leaves it out of the next. With
    no road there is no key (None): a km alone could tie unrelated roads.
    """
    if not report.road:
        return None
    parts = ["road", slug(report.road)]
    if report.km:
        parts.append(f"km{slug(report.km)}")
    elif report.place:
        parts.append(slug(report.place))
    if report.direction and report.direction != BOTH_DIRECTIONS:
        parts.append(f"dir-{slug(report.direction)}")
    return ":".join(part for part in parts if part)
