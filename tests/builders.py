"""One builder for the small earthquake alerts many tests need.

Lifecycle, dispatch and push tests all want "an Actual Sismo alert in
es-MX, expiring a day after it was sent, with no info when it is a Cancel";
they differ only in the values below.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from alertcast.domain import (
    Alert,
    AlertKey,
    Category,
    Certainty,
    Info,
    MsgType,
    Scope,
    Severity,
    Status,
    Urgency,
)


def quake_alert(
    identifier: str,
    *,
    sender: str,
    sent: datetime,
    msg_type: MsgType = MsgType.ALERT,
    status: Status = Status.ACTUAL,
    severity: Severity = Severity.SEVERE,
    references: Sequence[Alert | AlertKey] = (),
    headline: str | None = None,
    expires_in: timedelta | None = timedelta(days=1),
) -> Alert:
    """A CAP earthquake alert; a Cancel carries no info, as issuers send them."""
    infos: tuple[Info, ...] = ()
    if msg_type is not MsgType.CANCEL:
        infos = (
            Info(
                categories=(Category.GEO,),
                event="Sismo",
                urgency=Urgency.IMMEDIATE,
                severity=severity,
                certainty=Certainty.OBSERVED,
                language="es-MX",
                headline=headline if headline is not None else f"{msg_type.value} {identifier}",
                expires=sent + expires_in if expires_in is not None else None,
            ),
        )
    return Alert(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status=status,
        msg_type=msg_type,
        scope=Scope.PUBLIC,
        references=tuple(r.key if isinstance(r, Alert) else r for r in references),
        infos=infos,
    )
