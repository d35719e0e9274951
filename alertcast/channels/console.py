"""The ``console`` channel: writes what would be announced to the log and a local file.

It reaches nobody: it is the demo's and the developer's channel, so that a
newcomer sees an alert go all the way through without a provider account.
Every line is prefixed with the alert's status when it is not Actual, so a
drill is never mistaken for the real thing, even on a screen.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import structlog

from alertcast.domain import Alert, Status

log = structlog.get_logger(__name__)

_PREFIX = {
    Status.EXERCISE: "SIMULACRO / EXERCISE",
    Status.TEST: "PRUEBA / TEST",
    Status.SYSTEM: "SISTEMA / SYSTEM",
    Status.DRAFT: "BORRADOR / DRAFT",
}


def summary_line(alert: Alert, language: str = "es") -> str:
    """A one-line summary: status prefix (unless Actual), msgType, headline or event, sender."""
    info = alert.info_for(language)
    what = (info.headline or info.event) if info else "(sin información / no info)"
    prefix = _PREFIX.get(alert.status)
    head = f"[{prefix}] " if prefix else ""
    return f"{head}{alert.msg_type.value}: {what} — {alert.sender}"


class ConsoleChannel:
    """Appends one JSON line per alert to ``outbox`` and logs the summary."""

    def __init__(self, name: str, outbox: Path, language: str = "es") -> None:
        self.name = name
        self.outbox = outbox
        self.language = language

    async def announce(self, alert: Alert, source: str) -> None:
        line = summary_line(alert, self.language)
        record = {"channel": self.name, "alert": str(alert.key), "source": source, "text": line}
        await asyncio.to_thread(self._append, json.dumps(record, ensure_ascii=False))
        log.info("console.announced", channel=self.name, alert=str(alert.key), text=line)

    def _append(self, line: str) -> None:
        self.outbox.parent.mkdir(parents=True, exist_ok=True)
        with self.outbox.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
