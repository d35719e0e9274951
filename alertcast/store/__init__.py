"""Persistence: received alerts and the audit trail, on SQLite or PostgreSQL.

``engine`` connects, ``migrate`` brings the schema up to date, ``tables`` is
the schema, ``alerts`` the alert repository. The audit trail itself lives in
:mod:`alertcast.audit`, because it is part of the core's promise rather than
a storage detail.
"""

from alertcast.store.engine import make_engine, normalize_url, read_only, redact_url
from alertcast.store.migrate import current_revision, head_revision, is_current, upgrade

__all__ = [
    "current_revision",
    "head_revision",
    "is_current",
    "make_engine",
    "normalize_url",
    "read_only",
    "redact_url",
    "upgrade",
]
