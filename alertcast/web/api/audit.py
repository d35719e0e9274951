"""``GET /api/v1/audit`` and ``GET /api/v1/audit/verify``: the trail, read and checked.

The query pages by sequence number (``after``), so a client reads the whole
trail in order without ever missing or repeating a record, and filters by
exact ``action`` or ``subject`` in the database (by the subject index), not by
scanning the trail in Python. Verification answers 200 either way: a broken
chain is a finding to show, with the first sequence number where it breaks,
not an error of the request.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.errors import AuditError
from alertcast.officers.roles import Role
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import audit_log
from alertcast.web.api.inputs import after_and_limit, next_after, query_text
from alertcast.web.auth import require

MAX_PAGE = 1000
DEFAULT_PAGE = 100


class AuditApi:
    """Handlers over the audit trail of one database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def query(self, request: web.Request) -> web.Response:
        require(request, Role.VIEWER)
        after, limit = after_and_limit(request, default=DEFAULT_PAGE, most=MAX_PAGE)
        action = query_text(request, "action")
        subject = query_text(request, "subject")
        statement = (
            select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(limit)
        )
        if action is not None:
            statement = statement.where(audit_log.c.action == action)
        if subject is not None:
            statement = statement.where(audit_log.c.subject == subject)
        with database_errors("cannot read the audit trail"):
            async with read_only(self._engine) as conn:
                rows = list(await conn.execute(statement))
        records = [audit.record_from_row(row).to_json() for row in rows]
        body: dict[str, Any] = {
            "records": records,
            "next": next_after([record["seq"] for record in records], limit),
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def verify(self, request: web.Request) -> web.Response:
        require(request, Role.VIEWER)
        try:
            checked = await audit.verify_chain(self._engine)
        except AuditError as exc:
            body: dict[str, Any] = {
                "intact": False,
                "records": None,
                "broken_at": exc.sequence,
                "reason": exc.reason,
            }
        else:
            body = {"intact": True, "records": checked, "broken_at": None, "reason": None}
        return web.json_response(body, headers={"Cache-Control": "no-store"})
