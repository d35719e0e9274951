"""What every fake provider API shares: a local aiohttp server, a fault queue, a held answer.

A fake subclasses :class:`FakeServer`, adds its routes in :meth:`FakeServer.routes`
and is used as ``async with FakeX() as api:``; ``api.url`` is then the base URL
of a server on 127.0.0.1 (any free port), so tests never need the network.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Self

from aiohttp import web

HOLD_S = 10.0
"""How long a held answer waits at most: a test that forgets to close the fake still ends."""


@dataclass(kw_only=True)
class FakeServer:
    """The server, the queue of injected faults and the event that releases held answers.

    ``faults`` is consumed one per request (``None`` lets a request through);
    what each name means is the subclass's. Keyword-only, so a subclass's own
    fields keep their positions.
    """

    faults: list[str | None] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def routes(self, router: web.UrlDispatcher) -> None:
        """Add the API's routes to ``router``."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application()
        self.routes(app.router)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def next_fault(self) -> str | None:
        """The fault to apply to this request, taken off the queue; None when there is none."""
        return self.faults.pop(0) if self.faults else None

    async def hang(self) -> None:
        """Hold the answer (the ``timeout`` fault: the work is done, no answer comes)."""
        await asyncio.wait_for(self._release.wait(), timeout=HOLD_S)
