"""A Cancel or Update stops the pending deliveries of what it replaces.

The lifecycle (:mod:`alertcast.lifecycle`) decides which alerts a message
cancels or supersedes and reports it as effects (``"cancelled 12"``,
``"superseded 9"``); this listener, given to the :class:`alertcast.ingest.Ingestor`,
turns those alerts' pending rows ``cancelled`` right after. Should the process
die between the two commits, :func:`alertcast.dispatch.ledger.claim` still
refuses rows of an alert that is no longer in force, so nothing is sent either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.dispatch.ledger import cancel_for_alert

log = structlog.get_logger(__name__)

_STOPPING_EFFECTS = ("cancelled", "superseded")


class HasEffects(Protocol):
    """What the listener reads of an ingest outcome (``alertcast.ingest.ItemOutcome``)."""

    @property
    def key(self) -> object: ...

    @property
    def effects(self) -> tuple[str, ...]: ...


def stopped_alert_ids(effects: tuple[str, ...]) -> list[int]:
    """The ids of the alerts that ``effects`` cancelled or superseded."""
    ids: list[int] = []
    for effect in effects:
        state, _, alert_id = effect.partition(" ")
        if state in _STOPPING_EFFECTS and alert_id.isdigit():
            ids.append(int(alert_id))
    return ids


def cancel_on_lifecycle(engine: AsyncEngine) -> Callable[[HasEffects], Awaitable[None]]:
    """An ingest effect listener cancelling the deliveries of stopped alerts."""

    async def listener(outcome: HasEffects) -> None:
        ids = stopped_alert_ids(outcome.effects)
        if not ids:
            return
        count = await cancel_for_alert(
            engine, ids, f"cancelled or superseded by {outcome.key}", "lifecycle"
        )
        log.info("delivery.stopped_by_lifecycle", by=str(outcome.key), alerts=ids, count=count)

    return listener
