"""A wall clock the test moves by hand, for code that takes ``now`` as a callable.

Leases, feed polling and schedules decide by the time they are given; a
clock the test advances makes "fifteen seconds later" exact and instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class HandClock:
    """A wall clock the test moves by hand; suites subclass it to give their own start."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
