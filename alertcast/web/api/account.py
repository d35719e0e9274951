"""``GET /api/v1/me``: who the API takes the caller to be, and with which role.

A client checks its token with it before acting; the console reads it to
show or hide what the person may do.
"""

from __future__ import annotations

from aiohttp import web

from alertcast.officers.roles import Role
from alertcast.web.auth import require


async def me(request: web.Request) -> web.Response:
    who = require(request, Role.VIEWER)
    return web.json_response(
        {"name": who.name, "role": who.role.value, "via": who.via},
        headers={"Cache-Control": "no-store"},
    )
