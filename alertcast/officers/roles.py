"""Roles and the person behind a request.

Four roles in a strict order: a viewer reads, an officer composes and
submits, an approver also approves or rejects, an admin also manages people
and subscriber data. A higher role may do everything a lower one may, so a
check is always "at least this role" (:meth:`Role.allows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = ["Principal", "Role", "Via"]


class Role(StrEnum):
    """What a person may do; ordered viewer < officer < approver < admin."""

    VIEWER = "viewer"
    OFFICER = "officer"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """The role's place in the order (viewer 0 ... admin 3)."""
        return _ORDER.index(self)

    def allows(self, needed: Role) -> bool:
        """True when this role may do what ``needed`` may."""
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, value: str) -> Role:
        """The role named ``value``; ValueError naming the choices otherwise."""
        for role in cls:
            if role.value == value:
                return role
        raise ValueError(f"{value!r} is not a role (choose {', '.join(r.value for r in cls)})")


_ORDER = (Role.VIEWER, Role.OFFICER, Role.APPROVER, Role.ADMIN)

Via = Literal["token", "session", "cli"]


@dataclass(frozen=True, slots=True)
class Principal:
    """A person acting now, with the role they act under and how they proved who they are.

    The role may be lower than the person's own (a token scoped to viewer),
    never higher.
    """

    name: str
    role: Role
    via: Via

    @property
    def actor(self) -> str:
        """The audit actor of everything this person does: ``user:NAME``."""
        return f"user:{self.name}"
