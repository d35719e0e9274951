"""The subscriber store: who asked for alerts, on which channel, about what and where.

What it keeps is the least that sending and targeting need (see
:mod:`alertcast.subscribers.model`): no names and nothing a person typed
besides their choices. The address is encrypted at rest and found again by a
keyed hash (:mod:`alertcast.subscribers.crypto`), after being normalised
(:mod:`alertcast.subscribers.phones`) so that ``55 1234 5678`` and
``+52 55 1234 5678`` are one person.

Every opt-in, opt-out, change, deactivation, deletion and purge writes an
audit record in the same transaction as the change, so the trail shows when
and how each person agreed and left. Audit records are permanent, so they
never hold an address, its hash or a location: they name the subscriber by
id, and once a row is erased that id points at nothing.

Opting out erases: the row goes (with the person's answers to alerts). A
provider saying the recipient is gone (bot blocked, number unsubscribed at
the carrier) only deactivates, since the person did not ask to leave and may
come back; :meth:`SubscriberStore.purge_inactive` erases deactivated rows
after the retention period.

Write transactions take the audit trail's lock first
(:func:`~alertcast.store.alerts.lock_alert_writes`), the lock order of every
other writer, which also serialises the read-then-write of an upsert.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from sqlalchemy import and_, delete, false, func, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Delete, Update
from sqlalchemy.sql.elements import ColumnElement

from alertcast import audit
from alertcast.errors import AlertcastError
from alertcast.store.alerts import lock_alert_writes
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import acknowledgements, alerts, subscribers
from alertcast.subscribers.crypto import SubscriberKeys
from alertcast.subscribers.model import (
    ACK_KINDS,
    LANGUAGES,
    TOPICS,
    Candidate,
    QuietHours,
    Subscriber,
    subscriber_id_of,
)
from alertcast.subscribers.phones import InvalidAddress, normalize_address

log = structlog.get_logger(__name__)

OPT_IN_ACTION = "subscriber.opt_in"
OPT_OUT_ACTION = "subscriber.opt_out"
UPDATED_ACTION = "subscriber.updated"
DEACTIVATED_ACTION = "subscriber.deactivated"
DELETED_ACTION = "subscriber.deleted"
PURGED_ACTION = "subscriber.purged"
EXPORTED_ACTION = "subscriber.exported"
ACK_ACTION = "subscriber.ack"

DEFAULT_BATCH = 1000
"""Candidates per batch: one short read each, so no snapshot is held while targeting works."""

_PURGE_BATCH = 500
_REASON_WIDTH = 200
_DIGIT_RUN = re.compile(r"\+?\d[\d ().-]{5,}\d")

Clock = Callable[[], datetime]
RecipientGoneHook = Callable[[str, str], Awaitable[None]]


class SubscriberNotFound(AlertcastError, LookupError):
    """No subscriber has that id (never subscribed, opted out, deleted or purged)."""

    def __init__(self, subscriber_id: int) -> None:
        self.subscriber_id = subscriber_id
        super().__init__(f"there is no subscriber #{subscriber_id}")


def subject(subscriber_id: int) -> str:
    """The audit subject of a subscriber: the id, never the address."""
    return f"subscriber:{subscriber_id}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    return language


def _check_topics(topics: Iterable[str]) -> list[str]:
    chosen = sorted(set(topics))
    unknown = [t for t in chosen if t not in TOPICS]
    if unknown:
        raise ValueError(f"unknown topic(s) {', '.join(unknown)}; known: {', '.join(TOPICS)}")
    return chosen


def _check_areas(areas: Iterable[str]) -> list[str]:
    codes: list[str] = []
    for area in areas:
        code = area.strip()
        if not code or len(code) > 100 or "\x00" in code:
            raise ValueError(f"{area[:40]!r} is not an area code")
        if code not in codes:
            codes.append(code)
    return codes


def _check_point(point: tuple[float, float]) -> tuple[float, float]:
    lat, lon = float(point[0]), float(point[1])
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"({lat}, {lon}) is not a latitude and longitude")
    return lat, lon


def _check_quiet_hours(quiet: QuietHours) -> QuietHours:
    try:
        ZoneInfo(quiet.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{quiet.timezone!r} is not a time zone") from None
    if quiet.start == quiet.end:
        raise ValueError("quiet hours must start and end at different times")
    return quiet


def _required(name: str, value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError(f"{name} is required")
    return text


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def _quiet_from_row(row: Row[Any]) -> QuietHours | None:
    if row.quiet_start is None or row.quiet_end is None:
        return None
    return QuietHours(
        start=time.fromisoformat(row.quiet_start),
        end=time.fromisoformat(row.quiet_end),
        timezone=row.quiet_tz or "America/Mexico_City",
    )


def _point_from_row(row: Row[Any]) -> tuple[float, float] | None:
    if row.lat is None or row.lon is None:
        return None
    return float(row.lat), float(row.lon)


def _subscriber_from_row(row: Row[Any]) -> Subscriber:
    return Subscriber(
        id=int(row.id),
        channel=row.channel,
        language=row.language,
        topics=frozenset(json.loads(row.topics)),
        areas=tuple(json.loads(row.areas)),
        point=_point_from_row(row),
        quiet_hours=_quiet_from_row(row),
        active=bool(row.active),
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
    )


_CANDIDATE_COLUMNS: tuple[ColumnElement[Any], ...] = (
    subscribers.c.id,
    subscribers.c.language,
    subscribers.c.topics,
    subscribers.c.areas,
    subscribers.c.lat,
    subscribers.c.lon,
    subscribers.c.quiet_start,
    subscribers.c.quiet_end,
    subscribers.c.quiet_tz,
)


def _candidate_from_row(row: Row[Any]) -> Candidate:
    return Candidate(
        id=int(row.id),
        language=row.language,
        topics=frozenset(json.loads(row.topics)),
        areas=tuple(json.loads(row.areas)),
        point=_point_from_row(row),
        quiet_hours=_quiet_from_row(row),
    )


def scrub_reason(reason: str, address: str) -> str:
    """A provider's reason without the address or anything that looks like a number.

    Providers' error texts sometimes quote the number they refused; the audit
    trail is permanent, so it keeps only what explains the deactivation.
    """
    text = " ".join(reason.split())
    if address:
        text = text.replace(address, "…")
    text = _DIGIT_RUN.sub("…", text)
    return text if len(text) <= _REASON_WIDTH else text[: _REASON_WIDTH - 1] + "…"


class SubscriberStore:
    """Subscribers of every channel; see the module docstring for what is kept and audited.

    ``kinds`` maps channel instance names to their kinds (``sms``, ``whatsapp``,
    ``telegram``...), which decide how an address is normalised; a channel
    missing from it is taken to be of the kind it is named after.
    ``default_region`` is the country of phone numbers written without one.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        keys: SubscriberKeys,
        *,
        kinds: Mapping[str, str] | None = None,
        default_region: str = "MX",
        batch_size: int = DEFAULT_BATCH,
        clock: Clock = _utc_now,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._engine = engine
        self._keys = keys
        self._kinds = dict(kinds or {})
        self._region = default_region
        self._batch = batch_size
        self._clock = clock

    # ------------------------------------------------------------------ addresses

    def normalize(self, channel: str, address: str) -> str:
        """``address`` as stored for ``channel``; InvalidAddress when it is not one."""
        return normalize_address(
            self._kinds.get(channel, channel), address, default_region=self._region
        )

    def _key(self, channel: str, address: str) -> tuple[str, str]:
        normalized = self.normalize(channel, address)
        return normalized, self._keys.lookup_hash(channel, normalized)

    # ------------------------------------------------------------------ opt-in / opt-out

    async def subscribe(
        self,
        channel: str,
        address: str,
        *,
        language: str = "es",
        topics: Iterable[str] = (),
        areas: Iterable[str] = (),
        point: tuple[float, float] | None = None,
        consent_text: str,
        source: str,
    ) -> Subscriber:
        """Opt ``address`` in on ``channel``, or renew the choices of who already is.

        Idempotent: the same person subscribing again keeps their id and row,
        with the language, topics and areas given now, the shared point if one
        is given (an earlier one is kept otherwise), and active again if a
        provider had said gone. Audited as ``subscriber.opt_in`` with the consent text shown and
        where it came from (``telegram-bot``, ``sms-keyword``).
        """
        channel = _required("channel", channel)
        normalized, address_hash = self._key(channel, address)
        consent = _required("consent_text", consent_text)
        source = _required("source", source)
        values: dict[str, Any] = {
            "language": _check_language(language),
            "topics": json.dumps(_check_topics(topics)),
            "areas": json.dumps(_check_areas(areas), ensure_ascii=False),
        }
        if point is not None:
            values["lat"], values["lon"] = _check_point(point)
        now = self._clock()
        with database_errors("cannot store the subscription"):
            async with self._engine.begin() as conn:
                await lock_alert_writes(conn)
                existing = (
                    await conn.execute(
                        select(subscribers.c.id, subscribers.c.active).where(
                            _address_is(channel, address_hash)
                        )
                    )
                ).first()
                if existing is None:
                    result = await conn.execute(
                        subscribers.insert()
                        .values(
                            channel=channel,
                            address_hash=address_hash,
                            address_enc=self._keys.encrypt(normalized),
                            active=True,
                            created_at=now,
                            updated_at=now,
                            last_seen_at=now,
                            **values,
                        )
                        .returning(subscribers.c.id)
                    )
                    subscriber_id = int(result.scalar_one())
                else:
                    subscriber_id = int(existing.id)
                    await conn.execute(
                        update(subscribers)
                        .where(subscribers.c.id == subscriber_id)
                        .values(active=True, updated_at=now, last_seen_at=now, **values)
                    )
                await audit.append(
                    conn,
                    actor=source,
                    action=OPT_IN_ACTION,
                    subject=subject(subscriber_id),
                    data={
                        "subscriber": subscriber_id,
                        "channel": channel,
                        "consent_text": consent,
                        "source": source,
                        "new": existing is None,
                        "reactivated": existing is not None and not existing.active,
                    },
                    at=now,
                )
                row = await _row(conn, subscriber_id)
        log.info(
            "subscriber.opt_in", subscriber=subscriber_id, channel=channel, new=existing is None
        )
        assert row is not None
        return _subscriber_from_row(row)

    async def unsubscribe(
        self, channel: str, address: str, *, consent_text: str, source: str
    ) -> bool:
        """Opt out: erase the person's row and answers; False when they were not subscribed.

        Audited as ``subscriber.opt_out`` with the channel, the id the row had,
        the text shown and the source; nothing that identifies the person.
        """
        _, address_hash = self._key(channel, address)
        consent = _required("consent_text", consent_text)
        source = _required("source", source)
        subscriber_id = await self._change_one(
            delete(subscribers).where(_address_is(channel, address_hash)),
            failure="cannot erase the subscription",
            actor=source,
            action=OPT_OUT_ACTION,
            data={"consent_text": consent, "source": source},
            now=self._clock(),
        )
        if subscriber_id is None:
            return False
        log.info("subscriber.opt_out", subscriber=subscriber_id, channel=channel)
        return True

    async def deactivate(
        self, channel: str, address: str, *, reason: str, actor: str = "dispatch"
    ) -> bool:
        """Stop sending to an address a provider says is gone; True when a row was deactivated.

        The row stays (the person did not ask to leave, and subscribing again
        reactivates it) until :meth:`purge_inactive` erases it. Audited as
        ``subscriber.deactivated`` with the reason, scrubbed of numbers.
        """
        try:
            normalized, address_hash = self._key(channel, address)
        except InvalidAddress:
            return False
        now = self._clock()
        subscriber_id = await self._change_one(
            update(subscribers)
            .where(_address_is(channel, address_hash), subscribers.c.active == true())
            .values(active=False, updated_at=now),
            failure="cannot deactivate the subscription",
            actor=actor,
            action=DEACTIVATED_ACTION,
            data={"reason": scrub_reason(reason, normalized)},
            now=now,
        )
        if subscriber_id is None:
            return False
        log.info("subscriber.deactivated", subscriber=subscriber_id, channel=channel)
        return True

    async def deactivate_by_address(self, channel: str, address: str, reason: str) -> bool:
        """:meth:`deactivate`, with the reason as a positional argument."""
        return await self.deactivate(channel, address, reason=reason)

    def recipient_gone_hook(self) -> RecipientGoneHook:
        """The worker's ``on_recipient_gone``: deactivates the subscription behind a target.

        Targets that are no subscriber's (a route's fixed chat, a webhook URL)
        are left alone.
        """

        async def on_recipient_gone(channel: str, target: str) -> None:
            reason = "the provider reports the recipient gone"
            subscriber_id = subscriber_id_of(target)
            if subscriber_id is not None:
                addresses = await self.addresses_of([subscriber_id])
                if subscriber_id in addresses:
                    await self.deactivate(channel, addresses[subscriber_id], reason=reason)
                return
            await self.deactivate(channel, target, reason=reason)

        return on_recipient_gone

    async def resolve_targets(self, targets: Sequence[str]) -> dict[str, str]:
        """The worker's address lookup: ``sub:ID`` targets to active subscribers' addresses."""
        ids = {t: i for t in targets if (i := subscriber_id_of(t)) is not None}
        found = await self.addresses_of(sorted(set(ids.values())))
        return {target: found[i] for target, i in ids.items() if i in found}

    async def _change_one(
        self,
        statement: Delete | Update,
        *,
        failure: str,
        actor: str,
        action: str,
        data: Mapping[str, Any],
        now: datetime,
    ) -> int | None:
        """Erase or change one subscriber's row and audit it, in one transaction.

        Returns the id of the row ``statement`` hit, or None when it hit none
        (and then nothing is audited). Opt-out, deactivation and erasure all
        take this path so each writes its record under the same lock, naming
        the subscriber by id and channel only.
        """
        with database_errors(failure):
            async with self._engine.begin() as conn:
                await lock_alert_writes(conn)
                hit = (
                    await conn.execute(statement.returning(subscribers.c.id, subscribers.c.channel))
                ).first()
                if hit is None:
                    return None
                subscriber_id = int(hit.id)
                await audit.append(
                    conn,
                    actor=actor,
                    action=action,
                    subject=subject(subscriber_id),
                    data={"subscriber": subscriber_id, "channel": hit.channel, **data},
                    at=now,
                )
        return subscriber_id

    # ------------------------------------------------------------------ reads

    async def get(self, channel: str, address: str) -> Subscriber | None:
        """The subscriber behind ``address`` on ``channel``, active or not; None if none."""
        try:
            _, address_hash = self._key(channel, address)
        except InvalidAddress:
            return None
        query = select(subscribers).where(_address_is(channel, address_hash))
        with database_errors("cannot read the subscription"):
            async with read_only(self._engine) as conn:
                row = (await conn.execute(query)).first()
        return _subscriber_from_row(row) if row is not None else None

    async def get_by_id(self, subscriber_id: int) -> Subscriber | None:
        with database_errors(f"cannot read subscriber #{subscriber_id}"):
            async with read_only(self._engine) as conn:
                row = await _row(conn, subscriber_id)
        return _subscriber_from_row(row) if row is not None else None

    async def address_of(self, subscriber_id: int) -> str:
        """The decrypted address of a subscriber; SubscriberNotFound when there is none."""
        query = select(subscribers.c.address_enc).where(subscribers.c.id == subscriber_id)
        with database_errors(f"cannot read subscriber #{subscriber_id}"):
            async with read_only(self._engine) as conn:
                blob = (await conn.execute(query)).scalar_one_or_none()
        if blob is None:
            raise SubscriberNotFound(subscriber_id)
        return self._keys.decrypt(blob)

    async def addresses_of(self, subscriber_ids: Sequence[int]) -> dict[int, str]:
        """Decrypted addresses of the *active* subscribers among ``subscriber_ids``, in one read.

        For sending to an audience chosen from :meth:`candidates`: ids that
        left or were deactivated in between are simply missing.
        """
        ids = sorted(set(subscriber_ids))
        found: dict[int, str] = {}
        with database_errors("cannot read the subscribers' addresses"):
            async with read_only(self._engine) as conn:
                for start in range(0, len(ids), self._batch):
                    chunk = ids[start : start + self._batch]
                    rows = await conn.execute(
                        select(subscribers.c.id, subscribers.c.address_enc).where(
                            subscribers.c.id.in_(chunk), subscribers.c.active == true()
                        )
                    )
                    for row in rows:
                        found[int(row.id)] = self._keys.decrypt(row.address_enc)
        return found

    async def candidates(self, channel: str) -> AsyncIterator[list[Candidate]]:
        """The active subscribers of ``channel`` in batches, by id; addresses stay encrypted.

        Each batch is one short read (keyset paging on the id), so no
        transaction stays open while the caller works through a batch, and
        memory holds one batch whatever the number of subscribers.
        """
        after = 0
        while True:
            query = (
                select(*_CANDIDATE_COLUMNS)
                .where(
                    subscribers.c.channel == channel,
                    subscribers.c.active == true(),
                    subscribers.c.id > after,
                )
                .order_by(subscribers.c.id)
                .limit(self._batch)
            )
            with database_errors(f"cannot read the subscribers of {channel}"):
                async with read_only(self._engine) as conn:
                    rows = (await conn.execute(query)).all()
            if not rows:
                return
            yield [_candidate_from_row(row) for row in rows]
            if len(rows) < self._batch:
                return
            after = int(rows[-1].id)

    async def counts(self) -> dict[str, int]:
        """Active subscribers per channel."""
        query = (
            select(subscribers.c.channel, func.count())
            .where(subscribers.c.active == true())
            .group_by(subscribers.c.channel)
            .order_by(subscribers.c.channel)
        )
        with database_errors("cannot count the subscribers"):
            async with read_only(self._engine) as conn:
                return {str(row[0]): int(row[1]) for row in await conn.execute(query)}

    # ------------------------------------------------------------------ changes

    async def update(
        self,
        subscriber_id: int,
        *,
        language: str | None = None,
        topics: Iterable[str] | None = None,
        areas: Iterable[str] | None = None,
        point: tuple[float, float] | None = None,
        clear_point: bool = False,
        quiet_hours: QuietHours | None = None,
        clear_quiet_hours: bool = False,
        actor: str,
    ) -> Subscriber:
        """Change a subscriber's choices; audited as ``subscriber.updated`` with the fields changed.

        Only what is given changes; ``clear_point`` and ``clear_quiet_hours``
        remove those. A call that changes nothing writes nothing. The audit
        record names the fields, not their values: a location or a list of
        places would outlive the person's opt-out in the permanent trail.
        """
        if point is not None and clear_point:
            raise ValueError("give a point or clear_point, not both")
        if quiet_hours is not None and clear_quiet_hours:
            raise ValueError("give quiet_hours or clear_quiet_hours, not both")
        actor = _required("actor", actor)
        wanted: dict[str, Any] = {}
        if language is not None:
            wanted["language"] = _check_language(language)
        if topics is not None:
            wanted["topics"] = json.dumps(_check_topics(topics))
        if areas is not None:
            wanted["areas"] = json.dumps(_check_areas(areas), ensure_ascii=False)
        if point is not None:
            wanted["lat"], wanted["lon"] = _check_point(point)
        if clear_point:
            wanted["lat"] = wanted["lon"] = None
        if quiet_hours is not None:
            quiet = _check_quiet_hours(quiet_hours)
            wanted["quiet_start"] = _hhmm(quiet.start)
            wanted["quiet_end"] = _hhmm(quiet.end)
            wanted["quiet_tz"] = quiet.timezone
        if clear_quiet_hours:
            wanted["quiet_start"] = wanted["quiet_end"] = wanted["quiet_tz"] = None
        now = self._clock()
        with database_errors(f"cannot update subscriber #{subscriber_id}"):
            async with self._engine.begin() as conn:
                await lock_alert_writes(conn)
                row = await _row(conn, subscriber_id)
                if row is None:
                    raise SubscriberNotFound(subscriber_id)
                changes = {k: v for k, v in wanted.items() if getattr(row, k) != v}
                if not changes:
                    return _subscriber_from_row(row)
                await conn.execute(
                    update(subscribers)
                    .where(subscribers.c.id == subscriber_id)
                    .values(updated_at=now, **changes)
                )
                fields = sorted(
                    {_FIELD_NAMES.get(name, name) for name in changes},
                )
                await audit.append(
                    conn,
                    actor=actor,
                    action=UPDATED_ACTION,
                    subject=subject(subscriber_id),
                    data={"subscriber": subscriber_id, "channel": row.channel, "fields": fields},
                    at=now,
                )
                row = await _row(conn, subscriber_id)
        log.info("subscriber.updated", subscriber=subscriber_id, fields=fields)
        assert row is not None
        return _subscriber_from_row(row)

    async def touch(self, subscriber_id: int) -> None:
        """Note that the person was heard from now (``last_seen_at``); not audited."""
        now = self._clock()
        with database_errors(f"cannot update subscriber #{subscriber_id}"):
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(subscribers)
                    .where(subscribers.c.id == subscriber_id)
                    .values(last_seen_at=now)
                )

    async def export(self, subscriber_id: int, *, actor: str = "operator") -> dict[str, Any]:
        """Everything held about a subscriber, address decrypted, for a person's access request.

        The export itself is audited (``subscriber.exported``): reading a
        person's data is something an office must be able to account for.
        """
        now = self._clock()
        with database_errors(f"cannot export subscriber #{subscriber_id}"):
            async with self._engine.begin() as conn:
                await lock_alert_writes(conn)
                row = await _row(conn, subscriber_id)
                if row is None:
                    raise SubscriberNotFound(subscriber_id)
                acks = (
                    await conn.execute(
                        select(acknowledgements)
                        .where(acknowledgements.c.subscriber_id == subscriber_id)
                        .order_by(acknowledgements.c.at, acknowledgements.c.alert_id)
                    )
                ).all()
                await audit.append(
                    conn,
                    actor=_required("actor", actor),
                    action=EXPORTED_ACTION,
                    subject=subject(subscriber_id),
                    data={"subscriber": subscriber_id, "channel": row.channel},
                    at=now,
                )
        data = _subscriber_from_row(row).to_json()
        data["address"] = self._keys.decrypt(row.address_enc)
        data["updated_at"] = row.updated_at.isoformat()
        data["acknowledgements"] = [
            {"alert_id": int(a.alert_id), "kind": a.kind, "at": a.at.isoformat()} for a in acks
        ]
        return data

    async def delete(self, subscriber_id: int, *, actor: str) -> bool:
        """Erase a subscriber and their answers (an erasure request); False when there is none."""
        actor = _required("actor", actor)
        deleted = await self._change_one(
            delete(subscribers).where(subscribers.c.id == subscriber_id),
            failure=f"cannot delete subscriber #{subscriber_id}",
            actor=actor,
            action=DELETED_ACTION,
            data={},
            now=self._clock(),
        )
        if deleted is None:
            return False
        log.info("subscriber.deleted", subscriber=subscriber_id, actor=actor)
        return True

    async def purge_inactive(self, older_than: timedelta, *, actor: str) -> int:
        """Erase deactivated subscribers untouched for ``older_than``; return how many.

        Only rows a provider declared gone are purged, once neither a change
        nor a message from the person happened within ``older_than``: an active
        subscriber who never writes still wants the next warning. Rows go in
        batches, each with a ``subscriber.purged`` record listing the ids.
        """
        actor = _required("actor", actor)
        if older_than <= timedelta(0):
            raise ValueError("the retention period must be positive")
        now = self._clock()
        cutoff = now - older_than
        stale = and_(
            subscribers.c.active == false(),
            subscribers.c.updated_at < cutoff,
            subscribers.c.last_seen_at < cutoff,
        )
        purged = 0
        while True:
            with database_errors("cannot purge inactive subscribers"):
                async with self._engine.begin() as conn:
                    await lock_alert_writes(conn)
                    ids = [
                        int(i)
                        for i in (
                            await conn.execute(
                                select(subscribers.c.id)
                                .where(stale)
                                .order_by(subscribers.c.id)
                                .limit(_PURGE_BATCH)
                            )
                        ).scalars()
                    ]
                    if not ids:
                        break
                    await conn.execute(delete(subscribers).where(subscribers.c.id.in_(ids)))
                    await audit.append(
                        conn,
                        actor=actor,
                        action=PURGED_ACTION,
                        subject="subscribers",
                        data={
                            "subscribers": ids,
                            "inactive_since_before": cutoff.isoformat(),
                            "retention_days": older_than / timedelta(days=1),
                        },
                        at=now,
                    )
            purged += len(ids)
            if len(ids) < _PURGE_BATCH:
                break
        log.info("subscriber.purged", count=purged, actor=actor)
        return purged

    # ------------------------------------------------------------------ answers to alerts

    async def record_ack(self, subscriber_id: int, alert_id: int, kind: str) -> None:
        """Keep a person's answer to an alert; a later answer replaces an earlier one.

        Audited as ``subscriber.ack``. SubscriberNotFound when the subscriber
        is gone, LookupError when the alert is unknown.
        """
        if kind not in ACK_KINDS:
            raise ValueError(f"kind must be one of {', '.join(ACK_KINDS)}, not {kind!r}")
        now = self._clock()
        values = {"subscriber_id": subscriber_id, "alert_id": alert_id, "kind": kind, "at": now}
        with database_errors("cannot record the answer"):
            async with self._engine.begin() as conn:
                await lock_alert_writes(conn)
                if await _row(conn, subscriber_id) is None:
                    raise SubscriberNotFound(subscriber_id)
                known = await conn.execute(select(alerts.c.id).where(alerts.c.id == alert_id))
                if known.first() is None:
                    raise LookupError(f"there is no alert {alert_id}")
                insert = (
                    postgresql.insert(acknowledgements)
                    if conn.dialect.name == "postgresql"
                    else sqlite.insert(acknowledgements)
                )
                await conn.execute(
                    insert.values(**values).on_conflict_do_update(
                        index_elements=[
                            acknowledgements.c.subscriber_id,
                            acknowledgements.c.alert_id,
                        ],
                        set_={"kind": kind, "at": now},
                    )
                )
                await audit.append(
                    conn,
                    actor=subject(subscriber_id),
                    action=ACK_ACTION,
                    subject=subject(subscriber_id),
                    data={"subscriber": subscriber_id, "alert_id": alert_id, "kind": kind},
                    at=now,
                )
        log.info("subscriber.ack", subscriber=subscriber_id, alert_id=alert_id, kind=kind)

    async def ack_counts(self, alert_id: int) -> dict[str, int]:
        """How many people answered each way to an alert (every kind present, zero or more)."""
        query = (
            select(acknowledgements.c.kind, func.count())
            .where(acknowledgements.c.alert_id == alert_id)
            .group_by(acknowledgements.c.kind)
        )
        counts = dict.fromkeys(ACK_KINDS, 0)
        with database_errors(f"cannot count the answers to alert {alert_id}"):
            async with read_only(self._engine) as conn:
                for kind, count in await conn.execute(query):
                    counts[str(kind)] = int(count)
        return counts


_FIELD_NAMES = {
    "lat": "point",
    "lon": "point",
    "quiet_start": "quiet_hours",
    "quiet_end": "quiet_hours",
    "quiet_tz": "quiet_hours",
}
"""Columns as the fields people know them by, for ``subscriber.updated`` records."""


def _address_is(channel: str, address_hash: str) -> ColumnElement[bool]:
    """The row of one address on one channel (found by its keyed hash, never the address)."""
    return and_(subscribers.c.channel == channel, subscribers.c.address_hash == address_hash)


async def _row(conn: AsyncConnection, subscriber_id: int) -> Row[Any] | None:
    return (
        await conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id))
    ).first()
