"""Every kind of bad time-zone name gives one clear error."""

from __future__ import annotations

import pytest

from alertcast.timezones import UnknownTimeZone, zone


@pytest.mark.parametrize(
    "name", ["Pacific", "America", "Mars/Olympus", "", "../etc/passwd", "a\0b"]
)
def test_bad_names_are_one_clear_error(name: str) -> None:
    with pytest.raises(UnknownTimeZone, match="is not a time zone name"):
        zone(name)


def test_a_real_zone() -> None:
    assert zone("America/Mexico_City").key == "America/Mexico_City"
