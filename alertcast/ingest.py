"""Ingest: bytes from anywhere become stored alerts, or a recorded refusal.

Every source of CAP (a feed poller, a drop folder, an officer's upload) goes
through here, so the rules are the same for all: parse leniently (or strictly
when configured), store idempotently on the alert key, and leave an audit
record either way. A document that cannot be read is logged *and* audited
with the reason, and never stops the documents that come after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from alertcast import audit
from alertcast.cap import ParsedAlert, parse_cap_all
from alertcast.domain import Alert
from alertcast.errors import CapError
from alertcast.store.alerts import AlertRepository

log = structlog.get_logger(__name__)

NewAlertListener = Callable[[Alert, str], Awaitable[None]]
"""Called once per alert stored for the first time, with the source name."""


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What became of one document: the alerts it held (new or already known), or an error."""

    source: str
    new: tuple[Alert, ...] = ()
    known: tuple[Alert, ...] = ()
    error: str | None = None


class Ingestor:
    """Parses, stores and announces alerts from one place in the code."""

    def __init__(
        self,
        repository: AlertRepository,
        *,
        strict: bool = False,
        max_bytes: int = 5 * 1024 * 1024,
        listeners: tuple[NewAlertListener, ...] = (),
    ) -> None:
        self._repository = repository
        self._strict = strict
        self._max_bytes = max_bytes
        self._listeners = listeners

    async def ingest_bytes(self, data: bytes, *, source: str, actor: str) -> IngestOutcome:
        """Parse ``data`` and store every alert in it; refusals are audited, never raised."""
        try:
            parsed = parse_cap_all(data, strict=self._strict, max_bytes=self._max_bytes)
        except CapError as exc:
            log.error("cap.rejected", source=source, reason=str(exc))
            await audit.record(
                self._repository.engine,
                actor=actor,
                action="cap.rejected",
                subject=source,
                data={
                    "reason": str(exc),
                    "path": exc.path,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                },
            )
            return IngestOutcome(source=source, error=str(exc))
        new: list[Alert] = []
        known: list[Alert] = []
        for item in parsed:
            created = await self._store(item, data, source=source, actor=actor)
            (new if created else known).append(item.alert)
        for alert in new:
            for listener in self._listeners:
                await listener(alert, source)
        return IngestOutcome(source=source, new=tuple(new), known=tuple(known))

    async def _store(self, item: ParsedAlert, raw: bytes, *, source: str, actor: str) -> bool:
        result = await self._repository.ingest(
            item.alert,
            raw=raw,
            source=source,
            actor=actor,
            warnings=(*item.warnings, *item.notices),
            cap_version=item.cap_version,
        )
        log.info(
            "alert.ingested" if result.created else "alert.already_known",
            source=source,
            alert=str(item.alert.key),
            status=item.alert.status.value,
            msg_type=item.alert.msg_type.value,
            warnings=len(item.warnings),
        )
        return result.created
