"""Process roles: which parts of alertcast one process runs.

``alertcast serve`` runs everything (the embedded default, one machine).
Agencies that outgrow one machine run several processes against one
PostgreSQL and give each a share of the work with ``--role``:

* ``web``: the HTTP server (officers' API and console, public feed, provider
  webhooks, push ingest, ``/metrics``, health). Any number of them.
* ``worker``: dispatch (planner catch-up, delivery worker), the release of
  scheduled alerts and the expiry sweep. Any number of them: deliveries are
  claimed row by row.
* ``poller``: feed polling and drop folders. Any number of them: each feed is
  polled by one instance per interval through its lease in ``feed_state``.
* ``bot``: the citizens' Telegram bots. Telegram allows one ``getUpdates``
  consumer per bot token, so each bot consumes only where its lease
  ``bot:{channel}`` is held (:mod:`alertcast.ha.leases`); the others stand by.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from alertcast.errors import AlertcastError
from alertcast.i18n import language

ROLES: tuple[str, ...] = ("web", "worker", "poller", "bot")
"""Every role, in the order they are shown."""
ALL_ROLES: frozenset[str] = frozenset(ROLES)
"""No ``--role`` given: everything in one process."""

_MESSAGES = {
    "unknown": {
        "en": "unknown role {role!r}: choose from {choices} (several: --role web,worker)",
        "es": "rol desconocido {role!r}: elija entre {choices} (varios: --role web,worker)",
    },
    "empty": {
        "en": "empty role name: choose from {choices}",
        "es": "nombre de rol vacío: elija entre {choices}",
    },
}


class RoleError(AlertcastError):
    """A ``--role`` value names no role: a usage error (exit code 2)."""


def _message(key: str, **values: object) -> str:
    entry = _MESSAGES[key]
    return entry.get(language(), entry["en"]).format(**values)


def parse_roles(values: Sequence[str]) -> frozenset[str]:
    """The roles named by ``--role`` values, each one name or several separated by commas.

    Names are case-insensitive and surrounding spaces are ignored. No value at
    all means every role. Raises :class:`RoleError` for an unknown or empty name.
    """
    if not values:
        return ALL_ROLES
    chosen: set[str] = set()
    choices = ", ".join(ROLES)
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                raise RoleError(_message("empty", choices=choices))
            if name not in ALL_ROLES:
                raise RoleError(_message("unknown", role=part.strip(), choices=choices))
            chosen.add(name)
    return frozenset(chosen)


def ordered(roles: Iterable[str]) -> list[str]:
    """``roles`` in the canonical order of :data:`ROLES` (for logs and ``/readyz``)."""
    wanted = set(roles)
    return [role for role in ROLES if role in wanted]
