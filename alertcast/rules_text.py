"""Why a routing decision came out as it did, in words a duty officer reads.

The routing core records each reason as a code with its values, not as a
sentence, so that the same decision prints in Spanish or English
(``alertcast rules test``), stays stable in JSON for tools, and can be
compared in tests without depending on wording.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alertcast.i18n import language

REASONS: dict[str, dict[str, str]] = {
    # Matching
    "root": {"en": "the root route matches every alert", "es": "la ruta raíz acepta toda alerta"},
    "route.any": {
        "en": "no matchers: matches every alert that reaches it",
        "es": "sin condiciones: acepta toda alerta que llegue hasta ella",
    },
    "feed.match": {
        "en": "feed {feed} matches {pattern}",
        "es": "la fuente {feed} coincide con {pattern}",
    },
    "feed.miss": {
        "en": "feed {feed} matches none of {patterns}",
        "es": "la fuente {feed} no coincide con ninguno de {patterns}",
    },
    "feed.none": {
        "en": "the alert came from no feed; the route wants {patterns}",
        "es": "la alerta no vino de ninguna fuente; la ruta pide {patterns}",
    },
    "sender.match": {
        "en": "sender {sender} matches {pattern}",
        "es": "el emisor {sender} coincide con {pattern}",
    },
    "sender.miss": {
        "en": "sender {sender} matches none of {patterns}",
        "es": "el emisor {sender} no coincide con ninguno de {patterns}",
    },
    "status.match": {
        "en": "status {value} is one of {allowed}",
        "es": "el estado {value} es uno de {allowed}",
    },
    "status.miss": {
        "en": "status {value} is not one of {allowed}",
        "es": "el estado {value} no es uno de {allowed}",
    },
    "msg_type.match": {
        "en": "message type {value} is one of {allowed}",
        "es": "el tipo de mensaje {value} es uno de {allowed}",
    },
    "msg_type.miss": {
        "en": "message type {value} is not one of {allowed}",
        "es": "el tipo de mensaje {value} no es uno de {allowed}",
    },
    "category.match": {
        "en": "[{lang}] category {value} is one of {allowed}",
        "es": "[{lang}] la categoría {value} es una de {allowed}",
    },
    "category.miss": {
        "en": "[{lang}] categories {value} include none of {allowed}",
        "es": "[{lang}] las categorías {value} no incluyen ninguna de {allowed}",
    },
    "event.match": {
        "en": "[{lang}] event '{value}' matches {pattern}",
        "es": "[{lang}] el evento '{value}' coincide con {pattern}",
    },
    "event.miss": {
        "en": "[{lang}] event '{value}' matches none of {patterns}",
        "es": "[{lang}] el evento '{value}' no coincide con ninguno de {patterns}",
    },
    "threshold.match": {
        "en": "[{lang}] {field} {value} is at least {threshold}",
        "es": "[{lang}] {field} {value} alcanza al menos {threshold}",
    },
    "threshold.miss": {
        "en": "[{lang}] {field} {value} is below {threshold}",
        "es": "[{lang}] {field} {value} no alcanza {threshold}",
    },
    "geocode.match": {
        "en": "[{lang}] geocode {scheme} {value} starts with {prefix}",
        "es": "[{lang}] el geocódigo {scheme} {value} empieza por {prefix}",
    },
    "geocode.miss": {
        "en": "[{lang}] no geocode matches {wanted}",
        "es": "[{lang}] ningún geocódigo coincide con {wanted}",
    },
    "area.match": {
        "en": "[{lang}] area '{value}' intersects {name}",
        "es": "[{lang}] el área '{value}' se cruza con {name}",
    },
    "area.miss": {
        "en": "[{lang}] no polygon or circle of the alert intersects {names}",
        "es": "[{lang}] ningún polígono o círculo de la alerta se cruza con {names}",
    },
    "area.geocode_only": {
        "en": "[{lang}] the alert's area is given by geocodes only, so it cannot be "
        "placed against {names}",
        "es": "[{lang}] el área de la alerta solo trae geocódigos, no se puede situar "
        "respecto de {names}",
    },
    "language.match": {
        "en": "[{lang}] language {value} matches {pattern}",
        "es": "[{lang}] el idioma {value} coincide con {pattern}",
    },
    "language.miss": {
        "en": "[{lang}] language {value} is none of {patterns}",
        "es": "[{lang}] el idioma {value} no es ninguno de {patterns}",
    },
    "info.none": {
        "en": "the alert has no info block, so {fields} cannot match",
        "es": "la alerta no tiene bloque info, así que {fields} no puede coincidir",
    },
    # The exercise boundary
    "exercise.actual": {
        "en": "skipped: exercise route, and an Actual alert never follows one",
        "es": "omitida: ruta de simulacro, y una alerta real (Actual) nunca la sigue",
    },
    "exercise.not_exercise": {
        "en": "skipped: not an exercise route (a {status} alert only follows routes "
        "marked exercise = true)",
        "es": "omitida: no es ruta de simulacro (una alerta {status} solo sigue rutas "
        "con exercise = true)",
    },
    "exercise.blocked": {
        "en": "blocked: a {status} alert may only reach a test audience",
        "es": "bloqueada: una alerta {status} solo puede llegar a un público de prueba",
    },
    "exercise.blocked_actual": {
        "en": "blocked: an Actual alert never goes to a test audience",
        "es": "bloqueada: una alerta real nunca va a un público de prueba",
    },
    # The tree
    "route.child": {
        "en": "matched; a child route handles it",
        "es": "coincide; la atiende una ruta hija",
    },
    "route.not_tried": {
        "en": "not tried: an earlier route matched without continue",
        "es": "no evaluada: una ruta anterior coincidió sin continue",
    },
    "route.no_channels": {
        "en": "handled by a route that names no channels: nothing is sent",
        "es": "la atiende una ruta sin canales: no se envía nada",
    },
    "route.none": {
        "en": "no route delivers this alert",
        "es": "ninguna ruta entrega esta alerta",
    },
    "route.merged": {
        "en": "also routed by {route}; the stricter approval and higher priority apply",
        "es": "también la enruta {route}; rigen la aprobación más estricta y la mayor prioridad",
    },
    # Approval and priority
    "approval.route": {
        "en": "approval {value} set on route {route}",
        "es": "aprobación {value} fijada en la ruta {route}",
    },
    "approval.default_public": {
        "en": "approval two: the default for routes that reach the public",
        "es": "aprobación two: la predeterminada para rutas que llegan al público",
    },
    "approval.default_exercise": {
        "en": "approval auto: exercise routes reach only their test audience",
        "es": "aprobación auto: las rutas de simulacro solo llegan a su público de prueba",
    },
    "priority.route": {
        "en": "priority {value} set on route {route}",
        "es": "prioridad {value} fijada en la ruta {route}",
    },
    "priority.derived": {
        "en": "priority {value} from severity {severity} and urgency {urgency}",
        "es": "prioridad {value} según severidad {severity} y urgencia {urgency}",
    },
    "priority.exercise": {
        "en": "priority {value}: exercises always rank below real alerts",
        "es": "prioridad {value}: los simulacros siempre van detrás de las alertas reales",
    },
    # Grouping
    "group.new": {
        "en": "starts group {key}",
        "es": "abre el grupo {key}",
    },
    "group.update": {
        "en": "update of the message for {first}: same {labels}, {age}s after the last "
        "(window {window}s)",
        "es": "actualiza el mensaje de {first}: mismo {labels}, {age} s después del último "
        "(ventana {window} s)",
    },
    "group.expired": {
        "en": "starts group {key} again: the last message was {age}s ago (window {window}s)",
        "es": "vuelve a abrir el grupo {key}: el último mensaje fue hace {age} s "
        "(ventana {window} s)",
    },
    "group.missing": {
        "en": "not grouped: the alert has no {label}",
        "es": "sin agrupar: la alerta no tiene {label}",
    },
    # Inhibition, silences, quiet hours
    "inhibit.by": {
        "en": "inhibited by rule {rule}: active alert {source} ({severity}) has the same "
        "{labels} and an overlapping area",
        "es": "inhibida por la regla {rule}: la alerta activa {source} ({severity}) tiene "
        "igual {labels} y un área que se solapa",
    },
    "silence.muted": {
        "en": "silenced by #{id} ({matchers}), set by {author} until {ends}: {reason}",
        "es": "silenciada por #{id} ({matchers}), puesto por {author} hasta {ends}: {reason}",
    },
    "silence.extreme": {
        "en": "silence #{id} does not apply: an Extreme and Immediate real alert is only "
        "muted by a silence with include_extreme",
        "es": "el silencio #{id} no se aplica: una alerta real Extreme e Immediate solo se "
        "silencia con include_extreme",
    },
    "quiet.deferred": {
        "en": "deferred to {until}: quiet hours {start}-{end} ({timezone}) on {channel}",
        "es": "aplazada hasta {until}: horas de silencio {start}-{end} ({timezone}) en {channel}",
    },
    "quiet.override": {
        "en": "sent in quiet hours {start}-{end} ({timezone}) on {channel}: {why} overrides them",
        "es": "se envía en horas de silencio {start}-{end} ({timezone}) en {channel}: "
        "{why} las anula",
    },
}


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason: a code from :data:`REASONS` and the values its sentence needs."""

    code: str
    values: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, code: str, **values: object) -> Reason:
        """A reason with its values turned to text (so it stays hashable and JSON-ready)."""
        if code not in REASONS:
            raise KeyError(f"unknown routing reason {code!r}")
        return cls(code, tuple((k, _text(v)) for k, v in values.items()))

    def text(self, lang: str | None = None) -> str:
        """The sentence, in ``lang`` (``en``/``es``; default: the user's language)."""
        entry = REASONS[self.code]
        template = entry.get(lang or language(), entry["en"])
        return template.format(**dict(self.values))

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "values": dict(self.values), "text": self.text("en")}

    def __str__(self) -> str:
        return self.text("en")


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(str(v) for v in value) if isinstance(value, set | frozenset) else value
        return ", ".join(str(v) for v in items)
    return str(value)
