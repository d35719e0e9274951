"""What this process runs and which one-instance parts it holds, for ``/readyz``.

Readiness itself depends on the database and the migrations only: a standby
for a lease is ready (it is waiting by design). The roles and leases are shown
so that an operator sees at a glance which instance consumes which bot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from alertcast.ha.leases import RoleLease
from alertcast.ha.roles import ordered


@dataclass
class RoleStatus:
    """The roles this process runs and its role leases, read by the web layer."""

    roles: frozenset[str]
    leases: dict[str, RoleLease] = field(default_factory=dict)

    def add(self, leases: Iterable[RoleLease]) -> None:
        for lease in leases:
            self.leases[lease.name] = lease

    def snapshot(self) -> dict[str, Any]:
        """``{"roles": [...], "leases": {name: "held" | "standby"}}`` as of now."""
        return {
            "roles": ordered(self.roles),
            "leases": {
                name: "held" if lease.held else "standby"
                for name, lease in sorted(self.leases.items())
            },
        }
