"""A local feed server that behaves like real ones on the wire, good and bad.

It serves documents published by the test at any path, with a strong ETag
and a Last-Modified, answers conditional requests with 304, compresses with
gzip when asked, and records every request (path, conditional headers,
Accept-Encoding, User-Agent). Scripted misbehaviour: a number of 500s (or
any status, with Retry-After) before recovering, an HTML error page, an
empty body, a redirect loop, a redirect anywhere, a trickle of one byte at a
time, and a body larger than announced limits.

It runs in the test's event loop (``async with FeedServer() as server``) or,
for code that runs its own loop such as the CLI, in a thread
(``with FeedServer().in_thread() as server``).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web


@dataclass
class Document:
    body: bytes
    content_type: str
    etag: str
    last_modified: str


@dataclass
class Fault:
    status: int
    remaining: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"Internal Server Error"


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    path: str
    status: int
    if_none_match: str | None
    if_modified_since: str | None
    accept_encoding: str | None
    user_agent: str | None
    accept: str | None
    gzipped: bool


class FeedServer:
    """aiohttp on 127.0.0.1, port chosen by the system."""

    def __init__(self, *, etags: bool = True, last_modified: bool = True) -> None:
        self.documents: dict[str, Document] = {}
        self.faults: dict[str, Fault] = {}
        self.seen: list[Seen] = []
        self.etags = etags
        self.send_last_modified = last_modified
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._version = 0

    # ------------------------------------------------------------------ content

    def publish(self, path: str, body: bytes, content_type: str = "application/xml") -> None:
        """Serve ``body`` at ``path`` from now on, with fresh validators."""
        self._version += 1
        digest = hashlib.sha256(body).hexdigest()[:16]
        stamp = datetime(2026, 1, 1, tzinfo=UTC).timestamp() + self._version
        self.documents[path] = Document(
            body=body,
            content_type=content_type,
            etag=f'"{digest}"',
            last_modified=format_datetime(datetime.fromtimestamp(stamp, UTC), usegmt=True),
        )

    def fail(
        self,
        path: str,
        *,
        times: int,
        status: int = 500,
        headers: dict[str, str] | None = None,
        body: bytes = b"Internal Server Error",
    ) -> None:
        """Answer the next ``times`` requests for ``path`` with ``status``."""
        self.faults[path] = Fault(status, times, dict(headers or {}), body)

    def hits(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def link(self, path: str) -> str:
        return self.url + path

    # ------------------------------------------------------------------ handlers

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        fault = self.faults.get(path)
        if fault is not None and fault.remaining > 0:
            fault.remaining -= 1
            self._record(request, fault.status, gzipped=False)
            return web.Response(status=fault.status, body=fault.body, headers=fault.headers)
        document = self.documents.get(path)
        if document is None:
            self._record(request, 404, gzipped=False)
            return web.Response(status=404, text="not found")
        headers: dict[str, str] = {}
        if self.etags:
            headers["ETag"] = document.etag
        if self.send_last_modified:
            headers["Last-Modified"] = document.last_modified
        matches = self.etags and request.headers.get("If-None-Match") == document.etag
        unmodified = (
            not self.etags
            and self.send_last_modified
            and request.headers.get("If-Modified-Since") == document.last_modified
        )
        if matches or unmodified:
            self._record(request, 304, gzipped=False)
            return web.Response(status=304, headers=headers)
        body = document.body
        gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
        if gzipped:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        headers["Content-Type"] = document.content_type
        self._record(request, 200, gzipped=gzipped)
        return web.Response(status=200, body=body, headers=headers)

    async def _html(self, request: web.Request) -> web.Response:
        self._record(request, 200, gzipped=False)
        return web.Response(
            text="<!DOCTYPE html><html><body><h1>Service maintenance</h1></body></html>",
            content_type="text/html",
        )

    async def _empty(self, request: web.Request) -> web.Response:
        self._record(request, 200, gzipped=False)
        return web.Response(status=200, body=b"", content_type="application/xml")

    async def _loop(self, request: web.Request) -> web.Response:
        self._record(request, 302, gzipped=False)
        target = "/loop-b" if request.path == "/loop-a" else "/loop-a"
        return web.Response(status=302, headers={"Location": target})

    async def _redirect(self, request: web.Request) -> web.Response:
        self._record(request, 302, gzipped=False)
        return web.Response(status=302, headers={"Location": request.query["to"]})

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        self._record(request, 200, gzipped=False)
        response = web.StreamResponse(headers={"Content-Type": "application/xml"})
        await response.prepare(request)
        try:
            for byte in b"<?xml version='1.0'?><alert>" * 1000:
                await response.write(bytes([byte]))
                await asyncio.sleep(0.2)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    async def _big(self, request: web.Request) -> web.StreamResponse:
        self._record(request, 200, gzipped=False)
        size = int(request.query.get("bytes", "200000"))
        announce = request.query.get("announce", "1") == "1"
        if announce:
            return web.Response(body=b"<x>" + b" " * size + b"</x>")
        response = web.StreamResponse(headers={"Content-Type": "application/xml"})
        await response.prepare(request)
        try:
            for _ in range(size // 4096 + 1):
                await response.write(b" " * 4096)
        except ConnectionResetError:
            pass
        return response

    def _record(self, request: web.Request, status: int, *, gzipped: bool) -> None:
        headers = request.headers
        self.seen.append(
            Seen(
                path=request.path,
                status=status,
                if_none_match=headers.get("If-None-Match"),
                if_modified_since=headers.get("If-Modified-Since"),
                accept_encoding=headers.get("Accept-Encoding"),
                user_agent=headers.get("User-Agent"),
                accept=headers.get("Accept"),
                gzipped=gzipped,
            )
        )

    # ------------------------------------------------------------------ lifecycle

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/html", self._html)
        app.router.add_get("/empty", self._empty)
        app.router.add_get("/loop-a", self._loop)
        app.router.add_get("/loop-b", self._loop)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/trickle", self._trickle)
        app.router.add_get("/big", self._big)
        app.router.add_get("/{tail:.*}", self._serve)
        return app

    async def start(self) -> FeedServer:
        self._runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FeedServer:
        return await self.start()

    async def __aexit__(self, *_exc: Any) -> None:
        await self.stop()

    @contextmanager
    def in_thread(self) -> Iterator[FeedServer]:
        """Run the server on its own loop in a thread (for code that calls asyncio.run)."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        ready.wait(10)
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


# ---------------------------------------------------------------------- documents


CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"


def cap_alert(
    identifier: str,
    *,
    sent: str = "2026-01-19T11:00:00-06:00",
    msg_type: str = "Alert",
    references: str | None = None,
    sender: str = "alertas@example.gob.mx",
    expires: str | None = "2099-01-01T00:00:00-06:00",
    headline: str = "Cierre de la autopista México-Cuernavaca",
) -> bytes:
    """A small CAP 1.2 alert (an ``info`` unless it is a Cancel)."""
    refs = f"<references>{references}</references>" if references else ""
    info = (
        ""
        if msg_type == "Cancel"
        else (
            "<info><language>es-MX</language><category>Transport</category>"
            "<event>Cierre carretero</event><urgency>Immediate</urgency>"
            "<severity>Moderate</severity><certainty>Observed</certainty>"
            + (f"<expires>{expires}</expires>" if expires else "")
            + f"<headline>{headline}</headline>"
            "<area><areaDesc>Autopista México-Cuernavaca km 18-23</areaDesc></area></info>"
        )
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><alert xmlns="{CAP_NS}">'
        f"<identifier>{identifier}</identifier><sender>{sender}</sender><sent>{sent}</sent>"
        f"<status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>"
        f"{refs}{info}</alert>"
    ).encode()


def atom_index(base: str, entries: list[tuple[str, str]], *, updated: str | None = None) -> bytes:
    """An Atom index linking to CAP documents: ``entries`` are (entry id, path)."""
    items = "".join(
        f"<entry><id>{entry_id}</id><title>{entry_id}</title>"
        f"<updated>{updated or '2026-01-19T11:00:00-06:00'}</updated>"
        f'<link rel="alternate" type="application/cap+xml" href="{base}{path}"/></entry>'
        for entry_id, path in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<id>urn:test:index</id><title>Avisos</title>"
        f"<updated>2026-01-19T11:00:00-06:00</updated>{items}</feed>"
    ).encode()


def atom_embedded(alerts: list[bytes]) -> bytes:
    """An Atom index with each CAP alert embedded in its entry's content."""
    items = "".join(
        f"<entry><id>entry-{n}</id><title>alert {n}</title>"
        "<updated>2026-01-19T11:00:00-06:00</updated>"
        f'<content type="text/xml">{body.decode().split("?>", 1)[1]}</content></entry>'
        for n, body in enumerate(alerts)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<id>urn:test:embedded</id><title>Avisos</title>"
        f"<updated>2026-01-19T11:00:00-06:00</updated>{items}</feed>"
    ).encode()
