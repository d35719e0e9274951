"""Time-zone names from configuration, read one way everywhere.

``zoneinfo.ZoneInfo`` fails differently for different bad names: an unknown
name raises ``ZoneInfoNotFoundError``, a malformed one ``ValueError``, and a
name that is a folder of the tz database (``"Pacific"``, ``"America"``) an
``OSError`` from the file system. A configuration typo must give one clear
error, never a traceback.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo


class UnknownTimeZone(ValueError):
    """The name is not an IANA time zone such as ``America/Mexico_City``."""


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The zone called ``name``; ``UnknownTimeZone`` for anything that is not one."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise UnknownTimeZone(f"{name!r} is not a time zone name") from None
