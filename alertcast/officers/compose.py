"""Building the alerts officers compose: from the ``parse`` JSON shape, or from an alert in force.

An officer sends the same JSON that ``alertcast parse`` prints; the sender,
identifier and sent time are the system's to fill (the sender is the
office's own, ``[service] sender``, so nobody can issue in another
authority's name). A Cancel, an Update or an all clear is pre-filled from the
alert it follows, in the languages that alert spoke, so correcting a mistake
takes one click and a second person's approval, not a new composition.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from alertcast.alert_json import alert_from_json, alert_to_json
from alertcast.domain import Alert, Info, MsgType, ResponseType, Severity, Status, Urgency
from alertcast.officers.errors import Invalid

__all__ = [
    "ALLOWED_STATUSES",
    "UPDATE_KEYS",
    "all_clear_of",
    "cancel_of",
    "compose",
    "new_identifier",
    "update_of",
]

ALLOWED_STATUSES = (Status.ACTUAL, Status.EXERCISE, Status.TEST)
"""What an officer may issue: real alerts, drills and technical tests (never Draft or System)."""

UPDATE_KEYS = frozenset(
    {"headline", "description", "instruction", "severity", "urgency", "certainty", "expires"}
)
"""Keys of a correction applied to every info of the corrected alert (``infos`` replaces them)."""

_NOT_ID = re.compile(r"[^A-Za-z0-9.-]+")

_TEXTS: dict[str, dict[str, str]] = {
    "cancel.prefix": {"es": "CANCELADA", "en": "CANCELLED"},
    "cancel.description": {
        "es": "Esta alerta fue cancelada. No tome más acciones por ella.",
        "en": "This alert has been cancelled. Take no further action because of it.",
    },
    "cancel.note": {"es": "Cancelada por {user}", "en": "Cancelled by {user}"},
    "all_clear.prefix": {"es": "FIN DE LA ALERTA", "en": "ALL CLEAR"},
    "all_clear.description": {
        "es": "El peligro ha pasado. Siga las indicaciones de las autoridades locales.",
        "en": "The danger has passed. Follow the advice of local authorities.",
    },
}


def _language(tag: str) -> str:
    return "es" if tag.lower().startswith("es") else "en"


def _text(key: str, language: str) -> str:
    return _TEXTS[key][_language(language)]


def new_identifier(sender: str) -> str:
    """A fresh, unique CAP identifier: the sender's host and 20 random hex digits."""
    host = sender.rpartition("@")[2] or sender
    host = _NOT_ID.sub("-", host).strip("-") or "alertcast"
    return f"{host}-{uuid.uuid4().hex[:20]}"


def _invalid(exc: ValueError) -> Invalid:
    return Invalid(str(exc), es=str(exc))


def compose(
    data: Mapping[str, Any],
    *,
    sender: str,
    now: datetime,
    identifier: str | None = None,
) -> Alert:
    """An Alert from an officer's JSON; Invalid naming the key for anything wrong.

    ``sender`` is the office's; a different one in the body is refused.
    ``identifier`` (a draft being edited keeps its own) overrides a generated
    one; a different identifier in the body is refused. ``scope`` defaults to
    Public and ``msg_type`` to Alert, the only type composed from scratch;
    ``status`` must be given, because a drill must never be sent as real by
    default.
    """
    if not isinstance(data, Mapping):
        raise Invalid("alert: expected a JSON object", es="alert: se esperaba un objeto JSON")
    body = dict(data)
    given_sender = body.get("sender")
    if given_sender is not None and given_sender != sender:
        raise Invalid(
            f"sender: alerts composed here are sent as {sender!r}, not {given_sender!r}",
            es=f"sender: las alertas de aquí se emiten como {sender!r}, no {given_sender!r}",
        )
    body["sender"] = sender
    given_identifier = body.get("identifier")
    if identifier is not None and given_identifier not in (None, identifier):
        raise Invalid(
            f"identifier: this alert is {identifier!r}; the identifier cannot change",
            es=f"identifier: esta alerta es {identifier!r}; el identificador no puede cambiar",
        )
    if identifier is not None:
        body["identifier"] = identifier
    body.setdefault("scope", "Public")
    body.setdefault("msg_type", MsgType.ALERT.value)
    for key in ("warnings", "notices", "source_file"):
        body.pop(key, None)
    if body.get("status") is None:
        raise Invalid(
            "status: missing; choose Actual or Exercise",
            es="status: falta; elija Actual (real) o Exercise (simulacro)",
        )
    try:
        alert = alert_from_json(body, default_identifier=new_identifier(sender), default_sent=now)
    except ValueError as exc:
        raise _invalid(exc) from None
    if alert.msg_type is not MsgType.ALERT:
        raise Invalid(
            f"msg_type: compose an Alert; use cancel or update on the alert in force, "
            f"not {alert.msg_type.value}",
            es=f"msg_type: componga un Alert; para {alert.msg_type.value} use cancelar o "
            "actualizar sobre la alerta vigente",
        )
    if alert.status not in ALLOWED_STATUSES:
        raise Invalid(
            f"status: {alert.status.value} cannot be issued; choose Actual, Exercise or Test",
            es=f"status: {alert.status.value} no se puede emitir; elija Actual, Exercise o Test",
        )
    if alert.references:
        raise Invalid(
            "references: a new alert references nothing; use update or cancel instead",
            es="references: una alerta nueva no hace referencia a otra; use actualizar o cancelar",
        )
    if not alert.infos:
        raise Invalid(
            "infos: at least one info (what happened, where, what to do) is needed",
            es="infos: se necesita al menos un info (qué pasa, dónde, qué hacer)",
        )
    _check_texts(alert)
    return alert


def _check_texts(alert: Alert) -> None:
    for n, info in enumerate(alert.infos):
        if not (info.headline or "").strip() and not (info.description or "").strip():
            raise Invalid(
                f"infos[{n}].headline: a headline or a description is needed",
                es=f"infos[{n}].headline: se necesita un titular o una descripción",
            )
        if not info.areas:
            raise Invalid(
                f"infos[{n}].areas: at least one area is needed",
                es=f"infos[{n}].areas: se necesita al menos un área",
            )


def _following(original: Alert, msg_type: MsgType, *, now: datetime, note: str | None) -> Alert:
    """A ``msg_type`` message about ``original``: same sender, status and scope; references it."""
    return Alert(
        identifier=new_identifier(original.sender),
        sender=original.sender,
        sent=now,
        status=original.status,
        msg_type=msg_type,
        scope=original.scope,
        restriction=original.restriction,
        addresses=original.addresses,
        note=note,
        references=(original.key,),
        incidents=original.incidents,
        infos=original.infos,
    )


def _closing(original: Alert, kind: str, note: str | None, **changes: Any) -> tuple[Info, ...]:
    """``original``'s infos for a ``kind`` message (``cancel``, ``all_clear``) that ends it.

    Each headline gets the kind's prefix in its language; the description is
    the officer's note, or the kind's stock text; the instruction is dropped.
    """
    return tuple(
        replace(
            info,
            headline=f"{_text(kind + '.prefix', info.language)}: "
            f"{(info.headline or info.event).strip()}",
            description=(note or "").strip() or _text(kind + ".description", info.language),
            instruction=None,
            **changes,
        )
        for info in original.infos
    )


def cancel_of(original: Alert, *, now: datetime, note: str | None, user: str) -> Alert:
    """The Cancel of ``original``, with "CANCELADA: ..." / "CANCELLED: ..." in each language."""
    infos = _closing(original, "cancel", note, response_types=(ResponseType.NONE,))
    language = original.infos[0].language if original.infos else "en"
    text = (note or "").strip() or _text("cancel.note", language).format(user=user)
    return replace(_following(original, MsgType.CANCEL, now=now, note=text), infos=infos)


def all_clear_of(original: Alert, *, now: datetime, note: str | None) -> Alert:
    """An Update telling everyone the danger is over: AllClear, urgency Past, severity Minor."""
    infos = _closing(
        original,
        "all_clear",
        note,
        response_types=(ResponseType.ALL_CLEAR,),
        urgency=Urgency.PAST,
        severity=Severity.MINOR,
    )
    return replace(_following(original, MsgType.UPDATE, now=now, note=note), infos=infos)


def update_of(original: Alert, changes: Mapping[str, Any], *, now: datetime) -> Alert:
    """An Update of ``original`` with ``changes`` applied; Invalid naming the key otherwise.

    ``changes`` holds any of :data:`UPDATE_KEYS` (applied to every info) and
    ``infos`` (a full replacement list in the ``parse`` shape, applied first)
    and ``note``.
    """
    if not isinstance(changes, Mapping):
        raise Invalid("changes: expected a JSON object", es="changes: se esperaba un objeto JSON")
    unknown = sorted(str(k) for k in changes if k not in UPDATE_KEYS | {"infos", "note"})
    if unknown:
        allowed = ", ".join(sorted(UPDATE_KEYS | {"infos", "note"}))
        raise Invalid(
            f"{unknown[0]}: unknown key; change one of {allowed}",
            es=f"{unknown[0]}: clave desconocida; cambie una de {allowed}",
        )
    if not changes:
        raise Invalid("changes: nothing to change", es="changes: no hay nada que cambiar")
    base = _following(original, MsgType.UPDATE, now=now, note=None)
    data = alert_to_json(base)
    if "infos" in changes:
        data["infos"] = changes["infos"]
    if "note" in changes:
        data["note"] = changes["note"]
    infos = data["infos"]
    if isinstance(infos, list):
        for info in infos:
            if isinstance(info, dict):
                for key in UPDATE_KEYS & set(changes):
                    info[key] = changes[key]
    try:
        alert = alert_from_json(data)
    except ValueError as exc:
        raise _invalid(exc) from None
    if not alert.infos:
        raise Invalid(
            "infos: an update needs at least one info",
            es="infos: una actualización necesita un info",
        )
    return alert
