"""What every console handler needs, kept once on the application."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from alertcast.areas import AreaCatalogue
from alertcast.web.ingest_api import FailureThrottle

if TYPE_CHECKING:
    from alertcast.officers.services import OfficeServices


@dataclass(slots=True)
class ConsoleState:
    """The office's services, the map's tile source and the login throttles.

    Two throttles, because a guesser either tries many names from one
    address or one name from many addresses; each is stopped by one of them.
    """

    services: OfficeServices
    tile_url: str | None
    catalogue: AreaCatalogue | None = None
    by_address: FailureThrottle = field(default_factory=FailureThrottle)
    by_user: FailureThrottle = field(default_factory=FailureThrottle)


CONSOLE: web.AppKey[ConsoleState] = web.AppKey("console", ConsoleState)


def console_state(request: web.Request) -> ConsoleState:
    """The console's state from the application serving ``request``."""
    return request.app[CONSOLE]
