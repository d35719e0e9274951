"""The tables, as SQLAlchemy Core metadata.

This is the schema the code reads and writes; the migrations under
``migrations/versions`` are what create it. Changing a table here means adding
a migration: a test compares the two.

Both tables keep text exactly as it was hashed or received, so that what the
database returns is byte-for-byte what was proven or signed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so that later migrations can drop or alter them
by name on both databases (SQLite otherwise leaves them unnamed)."""

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp on both databases.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones and would hand
    back naive values. Values are converted to UTC on the way in and come back
    aware on the way out, so comparisons and ordering agree on both engines.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: a stored timestamp needs a time zone")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
_AutoId = BigInteger().with_variant(Integer(), "sqlite")

alerts = Table(
    "alerts",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("sender", Text, nullable=False),
    Column("identifier", Text, nullable=False),
    Column("sent", String(64), nullable=False, comment="CAP sent text, with its offset"),
    Column("sent_utc", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("msg_type", String(16), nullable=False),
    Column("cap_version", String(8), nullable=False),
    Column("source", Text, nullable=False, comment="feed name or user it came from"),
    Column("raw", LargeBinary, nullable=True, comment="the document as received"),
    Column("normalized", Text, nullable=False, comment="alert_to_json, canonical JSON"),
    Column("warnings", Text, nullable=False, comment="JSON list of parser warnings"),
    Column("received_at", UtcDateTime, nullable=False),
    Column("feed", Text, nullable=True, comment="name of the feed it came from, if any"),
    Column("thread", Text, nullable=True, comment="real-world thing it is about (road segment...)"),
    Column(
        "state",
        String(16),
        nullable=False,
        server_default="active",
        comment="active, cancelled, superseded, withdrawn or expired",
    ),
    Column("state_changed_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True, comment="Alert.expires, for active queries"),
    Column("created_by", Text, nullable=True, comment="user who composed it; NULL for feeds"),
    Column(
        "approvals_required",
        Integer,
        nullable=True,
        comment="distinct approvals a composed alert needs, fixed when submitted",
    ),
    Column("scheduled_for", UtcDateTime, nullable=True, comment="release time of a scheduled one"),
    Column("submitted_at", UtcDateTime, nullable=True),
    Column("review_reason", Text, nullable=True, comment="why it was rejected"),
    UniqueConstraint("sender", "identifier", "sent_utc"),
    Index("ix_alerts_sent_utc", "sent_utc"),
    Index("ix_alerts_feed_thread", "feed", "thread"),
    Index("ix_alerts_state", "state"),
)

alert_references = Table(
    "alert_references",
    metadata,
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("ref_sender", Text, nullable=False),
    Column("ref_identifier", Text, nullable=False),
    Column("ref_sent_utc", UtcDateTime, nullable=False),
    Column(
        "ref_alert_id",
        BigInteger,
        ForeignKey("alerts.id", ondelete="SET NULL"),
        nullable=True,
        comment="the referenced alert once known; NULL while it was never seen",
    ),
    PrimaryKeyConstraint("alert_id", "ref_sender", "ref_identifier", "ref_sent_utc"),
    Index("ix_alert_references_target", "ref_sender", "ref_identifier", "ref_sent_utc"),
)

feed_state = Table(
    "feed_state",
    metadata,
    Column("feed", Text, primary_key=True),
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("content_sha256", String(64), nullable=True),
    Column("last_attempt_at", UtcDateTime, nullable=True),
    Column("last_success_at", UtcDateTime, nullable=True),
    Column("last_change_at", UtcDateTime, nullable=True),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    Column("items_seen", BigInteger, nullable=False, server_default="0"),
    Column("next_poll_at", UtcDateTime, nullable=True),
    Column("lease_owner", Text, nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
)

feed_entries = Table(
    "feed_entries",
    metadata,
    Column("feed", Text, nullable=False),
    Column("entry_id", Text, nullable=False, comment="entry id, link or alert key as listed"),
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="SET NULL"), nullable=True),
    Column("link", Text, nullable=True),
    Column("etag", Text, nullable=True),
    Column("content_sha256", String(64), nullable=True),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("gone_at", UtcDateTime, nullable=True, comment="when it left the index"),
    PrimaryKeyConstraint("feed", "entry_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False, comment="ISO-8601 UTC text, as hashed"),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("data", Text, nullable=False, comment="canonical JSON text, as hashed"),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_subject", "subject"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("matchers", Text, nullable=False, comment="JSON list of {label, op, value}"),
    Column(
        "include_extreme",
        Boolean,
        nullable=False,
        server_default=false(),
        comment="also mutes real Extreme and Immediate alerts",
    ),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("author", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expired_at", UtcDateTime, nullable=True, comment="when it was ended early, if it was"),
    Index("ix_silences_ends_at", "ends_at"),
)
"""Time-boxed mutes set by operators (``alertcast silences``); every change is audited."""

DELIVERY_STATES = (
    "pending",
    "claimed",
    "sent",
    "delivered",
    "failed",
    "dead",
    "cancelled",
    "unknown",
)
"""The states of a delivery row; see :mod:`alertcast.dispatch.ledger` for the transitions."""

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("channel", Text, nullable=False, comment="channel instance name"),
    Column("target", Text, nullable=False, comment="chat id, number, account or URL"),
    Column("group_key", Text, nullable=True, comment="shared per-group rate limit, if any"),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("priority", Integer, nullable=False, comment="lower is sent sooner"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("deadline_at", UtcDateTime, nullable=True, comment="never sent after this (expiry)"),
    Column("lease_owner", Text, nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    Column(
        "attempt_started_at",
        UtcDateTime,
        nullable=True,
        comment="set when the current attempt's send began; a cancel no longer applies",
    ),
    Column("last_error_class", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("provider_message_id", Text, nullable=True),
    Column(
        "message_id",
        BigInteger,
        ForeignKey("delivery_messages.id"),
        nullable=False,
        comment="the rendered message, stored once in delivery_messages",
    ),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("alert_id", "channel", "target"),
    Column(
        "unknown_attempts",
        Integer,
        nullable=False,
        server_default="0",
        comment="attempts whose outcome was ambiguous (may have been received)",
    ),
    Index("ix_deliveries_claim", "state", "priority", "next_attempt_at", "id"),
    Index("ix_deliveries_channel_provider_message_id", "channel", "provider_message_id"),
)
"""The delivery ledger: one row per (alert, channel, target)."""

rate_budgets = Table(
    "rate_budgets",
    metadata,
    Column("scope", Text, primary_key=True, comment="channel, channel/recipient or channel/group"),
    Column("tokens", Double, nullable=False),
    Column("refreshed_at", UtcDateTime, nullable=False),
    Column("paused_until", UtcDateTime, nullable=True),
)
"""Token buckets shared by every instance, so together they never exceed a provider's limit."""

dispatch_decisions = Table(
    "dispatch_decisions",
    metadata,
    Column(
        "alert_id",
        BigInteger,
        ForeignKey("alerts.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("decision", Text, nullable=False, comment="the routing decision as JSON"),
)
"""One row per routed alert: an alert is routed once, whichever instance gets there first."""

DISPATCH_ROUTE_STATES = (
    "awaiting_approval",
    "deferred",
    "planning",
    "planned",
    "rejected",
    "failed",
)
"""What became of one routed (alert, route, channel): see :mod:`alertcast.dispatch.planner`."""

dispatch_routes = Table(
    "dispatch_routes",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("route", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column(
        "state",
        String(24),
        nullable=False,
        comment="awaiting_approval, deferred, planning, planned, rejected, failed",
    ),
    Column("approval", String(8), nullable=False, comment="auto, one or two"),
    Column("decision", Text, nullable=False, comment="the routed delivery as JSON"),
    Column("detail", Text, nullable=True, comment="why it failed, if it did"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("alert_id", "route", "channel"),
    Index("ix_dispatch_routes_state", "state"),
)
"""Each routed delivery of an alert, kept so that approval can release what routing held."""

route_groups = Table(
    "route_groups",
    metadata,
    Column("key", Text, primary_key=True),
    Column("first", Text, nullable=False, comment="key of the group's first alert"),
    Column("last_at", UtcDateTime, nullable=False),
)
"""Group states of the routing rules (``group_by``): the next alert of a group updates the first."""

delivery_messages = Table(
    "delivery_messages",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False, comment="hex SHA-256 of payload"),
    Column("payload", Text, nullable=False, comment="OutboundMessage as canonical JSON"),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("sha256"),
)
"""Each distinct rendered message once: a fan-out's million rows all point at the same one."""

early_receipts = Table(
    "early_receipts",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("channel", Text, nullable=False),
    Column("provider_message_id", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("error_code", String(32), nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Index("ix_early_receipts_channel_provider_message_id", "channel", "provider_message_id"),
)
"""Provider callbacks that arrived before the send's outcome was written; applied later."""

published_alerts = Table(
    "published_alerts",
    metadata,
    Column(
        "alert_id",
        BigInteger,
        ForeignKey("alerts.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("channel", Text, nullable=False, comment="the cap channel that published it"),
    Column("published_at", UtcDateTime, nullable=False),
    Index("ix_published_alerts_published_at", "published_at"),
)
"""Alerts in our own public CAP feed: only these are served at /cap and /alerts."""

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("channel", Text, nullable=False, comment="channel instance name"),
    Column(
        "address_hash",
        String(64),
        nullable=False,
        comment="HMAC-SHA256 (hex) of channel and normalised address",
    ),
    Column("address_enc", LargeBinary, nullable=False, comment="the address, AES-GCM encrypted"),
    Column("language", String(8), nullable=False),
    Column("topics", Text, nullable=False, comment="JSON list of topic names"),
    Column("areas", Text, nullable=False, comment="JSON list of catalogue area codes"),
    Column("lat", Double, nullable=True, comment="latitude of a shared location"),
    Column("lon", Double, nullable=True, comment="longitude of a shared location"),
    Column("quiet_start", String(5), nullable=True, comment="HH:MM local"),
    Column("quiet_end", String(5), nullable=True, comment="HH:MM local"),
    Column("quiet_tz", Text, nullable=True, comment="IANA time zone of the quiet hours"),
    Column("active", Boolean, nullable=False, comment="false once the provider said gone"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    UniqueConstraint("channel", "address_hash"),
    Index("ix_subscribers_channel_active", "channel", "active"),
)
"""One person on one channel; no name, no address in clear (see alertcast.subscribers)."""

acknowledgements = Table(
    "acknowledgements",
    metadata,
    Column(
        "subscriber_id",
        BigInteger,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False, comment="safe or need_help"),
    Column("at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("subscriber_id", "alert_id"),
    Index("ix_acknowledgements_alert_id_kind", "alert_id", "kind"),
)
"""A person's answer to an alert ("I am safe" / "I need help"): the last one counts."""

areas = Table(
    "areas",
    metadata,
    Column("code", Text, primary_key=True, comment="SCHEME:value, e.g. INEGI_CVEGEO:09015"),
    Column("scheme", String(32), nullable=False, comment="CAP geocode valueName"),
    Column("value", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("name_folded", Text, nullable=False, comment="accent- and case-folded, for search"),
    Column("geometry", LargeBinary, nullable=False, comment="WKB, WGS 84 lon/lat"),
    Column("min_lat", Double, nullable=False),
    Column("min_lon", Double, nullable=False),
    Column("max_lat", Double, nullable=False),
    Column("max_lon", Double, nullable=False),
    Column("source", Text, nullable=False, comment="file name it was imported from"),
    Column("imported_at", UtcDateTime, nullable=False),
    Index("ix_areas_scheme_value", "scheme", "value"),
)
"""The area catalogue: places people subscribe to by name (see alertcast.areas)."""

ROLES = ("viewer", "officer", "approver", "admin")
"""The officers' roles, lowest first (see :mod:`alertcast.officers.roles`)."""

users = Table(
    "users",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, comment="login name, [a-z0-9._-]"),
    Column("display_name", Text, nullable=False),
    Column("role", String(16), nullable=False, comment="viewer, officer, approver or admin"),
    Column("password_hash", Text, nullable=True, comment="argon2id; NULL: no console login"),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("last_login_at", UtcDateTime, nullable=True),
    UniqueConstraint("name"),
)
"""Duty officers and the others who use the console, the API or the CLI."""

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("label", Text, nullable=False),
    Column("role", String(16), nullable=False, comment="at most the user's role"),
    Column("token_hash", String(64), nullable=False, comment="hex SHA-256 of the token"),
    Column("prefix", String(16), nullable=False, comment="first characters, to recognise it"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    UniqueConstraint("token_hash"),
)
"""API tokens, stored hashed: the token itself is shown once, when created."""

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True, comment="hex SHA-256 of the cookie value"),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_web_sessions_expires_at", "expires_at"),
)
"""Console logins, stored hashed: a copy of the table lets nobody log in."""

alert_approvals = Table(
    "alert_approvals",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("decision", String(8), nullable=False, comment="approve or reject"),
    Column("reason", Text, nullable=True),
    Column("at", UtcDateTime, nullable=False),
    UniqueConstraint("alert_id", "user_name"),
)
"""Each person's decision on an alert: one per person, so nobody counts twice."""

role_leases = Table(
    "role_leases",
    metadata,
    Column("name", Text, primary_key=True, comment="e.g. bot:{channel}"),
    Column("owner", Text, nullable=True, comment="instance holding it; NULL when released"),
    Column("acquired_at", UtcDateTime, nullable=False, comment="when the owner took it"),
    Column("renewed_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, comment="free for anyone after this"),
)
"""Parts that run on one instance at a time (a Telegram bot's update consumer): who holds each."""
