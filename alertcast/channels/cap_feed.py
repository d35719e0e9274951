"""The ``cap`` channel: publish an alert into our own public CAP feed.

Other systems (aggregators, broadcasters, Google Public Alerts, a
neighbouring agency's alertcast) take alerts as CAP documents listed in an
Atom index, not as chat messages. Sending on this channel therefore writes
one row in ``published_alerts``; the web routes of
:mod:`alertcast.web.public` then serve the alert as CAP 1.2 at
``/cap/{id}.xml``, list it in ``/cap/index.atom`` and show it to people at
``/alerts/{id}``. Nothing is public that is not in that table, and a row is
only ever written by a delivery, which exists only for an approved route: an
unapproved draft can never be seen.

An Update or a Cancel needs no follow-up here: publishing the new message is
itself the follow-up. The index shows the newest message first and carries
its ``<references>``; the older documents stay where they were, so anyone
holding a link can still read what was said and when.

Publishing is idempotent (the alert id is the key): a resend after an
ambiguous failure finds the row and succeeds without a second record. A
CAP ``Draft`` is refused: by definition it is not meant to be acted upon.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.errors import ConfigError, ConfigProblem, Permanent, StoreError, Transient
from alertcast.ports import OutboundMessage, Receipt
from alertcast.store.engine import database_errors
from alertcast.store.tables import alerts, published_alerts

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

log = structlog.get_logger(__name__)

PUBLISHED_ACTION = "alert.published"


def cap_path(alert_id: int) -> str:
    """The path of an alert's CAP document on this service."""
    return f"/cap/{alert_id}.xml"


class CapFeedChannel:
    """Publishes alerts into ``published_alerts``; implements ``Channel``."""

    kind = "cap"

    def __init__(
        self,
        name: str,
        engine: AsyncEngine,
        *,
        site_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self.engine = engine
        self.site_url = site_url.rstrip("/") if site_url else None
        self.clock = clock

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"CapFeedChannel(name={self._name!r})"

    def _location(self, alert_id: int) -> str:
        return (self.site_url or "") + cap_path(alert_id)

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        raw = message.extra.get("alert_id")
        if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
            raise Permanent("the message names no stored alert (extra.alert_id) to publish")
        alert_id = int(raw)
        try:
            created = await self._publish(alert_id)
        except StoreError as exc:
            raise Transient(str(exc)) from exc
        log.info("cap.published", channel=self._name, alert_id=alert_id, new=created)
        return Receipt(provider_message_id=self._location(alert_id), delivered=True)

    async def _publish(self, alert_id: int) -> bool:
        """Insert the row (once); True when this call published it."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        with database_errors(f"cannot publish alert {alert_id}"):
            async with self.engine.begin() as conn:
                row = (
                    await conn.execute(select(alerts.c.status).where(alerts.c.id == alert_id))
                ).first()
                if row is None:
                    raise Permanent(f"there is no stored alert {alert_id} to publish")
                if row.status == "Draft":
                    raise Permanent(f"alert {alert_id} is a CAP Draft, which is never published")
                dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
                inserted = (
                    await conn.execute(
                        dialect.insert(published_alerts)
                        .values(alert_id=alert_id, channel=self._name, published_at=now)
                        .on_conflict_do_nothing(index_elements=["alert_id"])
                        .returning(published_alerts.c.alert_id)
                    )
                ).scalar_one_or_none()
                if inserted is None:
                    return False
                await audit.append(
                    conn,
                    actor=f"channel:{self._name}",
                    action=PUBLISHED_ACTION,
                    subject=f"published:alert:{alert_id}",
                    data={"alert_id": alert_id, "channel": self._name, "path": cap_path(alert_id)},
                    at=now,
                )
                return True

    async def aclose(self) -> None:
        return None


def from_config(channel: ChannelConfig, context: ChannelContext) -> CapFeedChannel:
    """The feed channel of ``channels/NAME.toml``; it needs the service's database."""
    if context.engine is None:
        raise ConfigError(
            [
                ConfigProblem(
                    str(channel.file),
                    "kind",
                    "a cap channel publishes into the database, and none was given",
                )
            ]
        )
    return CapFeedChannel(channel.name, context.engine, site_url=context.site_url)
