"""The webhook channel against a real HTTP server on 127.0.0.1: what it sends, how it fails."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from alertcast.channels.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookChannel,
    classify,
    idempotency_key,
    retry_after_s,
    send_tracking,
    sign,
    verify_signature,
)
from alertcast.errors import (
    Permanent,
    RateLimited,
    RecipientGone,
    SentButUnknown,
    Transient,
)
from alertcast.ports import Channel, OutboundMessage, Receipt

SECRET = b"s3cret-for-tests"
NOW = 1_800_000_000.0
MESSAGE = OutboundMessage(
    parts=("Sismo M6.1: aléjese de muros", "Segunda parte"),
    subject="Sismo",
    language="es",
    severity="Extreme",
    extra={"alert_id": 7},
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Server:
    """One aiohttp app on a free port of 127.0.0.1 whose handler a test sets."""

    def __init__(self) -> None:
        self.handler: Handler = self._ok
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.url = ""
        self.hits: dict[str, int] = {}

    async def _ok(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"id": "msg-1"})

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        if request.path == "/hook":
            self.requests.append((dict(request.headers), await request.read()))
        return await self.handler(request)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.dispatch)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def channel(server: Server) -> AsyncIterator[WebhookChannel]:
    hook = WebhookChannel("hook", server.url, secret=SECRET, timeout_s=2.0, clock=lambda: NOW)
    try:
        yield hook
    finally:
        await hook.aclose()


def answer_with(status: int, body: str = "", headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text=body, headers=headers)

    return handler


# --------------------------------------------------------------------------- what is sent


async def test_the_request_is_signed_versioned_json(
    server: Server, channel: WebhookChannel
) -> None:
    receipt = await channel.send(MESSAGE, "https://receiver.example/alerts")

    assert receipt == Receipt(provider_message_id="msg-1")
    headers, body = server.requests[0]
    assert headers[TIMESTAMP_HEADER] == str(int(NOW))
    assert headers["Content-Type"].startswith("application/json")
    assert verify_signature(
        SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER], now=NOW + 10
    )
    data = json.loads(body)
    assert data == {
        "version": "1",
        "delivery": {
            "target": "https://receiver.example/alerts",
            "idempotency_key": headers[IDEMPOTENCY_HEADER],
            "alert_id": 7,
        },
        "message": MESSAGE.to_json(),
    }


async def test_without_a_secret_no_signature_is_sent(server: Server) -> None:
    hook = WebhookChannel("hook", server.url, secret=None)
    try:
        await hook.send(MESSAGE, "t")
    finally:
        await hook.aclose()
    headers, _ = server.requests[0]
    assert SIGNATURE_HEADER not in headers
    assert TIMESTAMP_HEADER in headers


async def test_the_idempotency_key_is_stable_per_message_and_target(
    server: Server, channel: WebhookChannel
) -> None:
    await channel.send(MESSAGE, "a")
    await channel.send(MESSAGE, "a")
    await channel.send(MESSAGE, "b")
    await channel.send(OutboundMessage(parts=("otro",), extra={"alert_id": 7}), "a")
    await channel.send(OutboundMessage(parts=MESSAGE.parts, extra={"alert_id": 8}), "a")
    keys = [headers[IDEMPOTENCY_HEADER] for headers, _ in server.requests]

    assert keys[0] == keys[1] == idempotency_key(MESSAGE, "a")
    assert len(set(keys[1:])) == 4  # another target, text or alert: another key
    assert json.loads(server.requests[0][1])["delivery"]["idempotency_key"] == keys[0]


async def test_a_delivery_id_names_the_key_and_travels_in_the_payload(
    server: Server, channel: WebhookChannel
) -> None:
    first = OutboundMessage(parts=("uno",), extra={"alert_id": 3, "delivery_id": 41})
    edited = OutboundMessage(parts=("uno, corregido",), extra={"alert_id": 3, "delivery_id": 41})
    await channel.send(first, "x")
    await channel.send(edited, "x")
    await channel.send(OutboundMessage(parts=("uno",), extra={"delivery_id": 42}), "x")

    keys = [headers[IDEMPOTENCY_HEADER] for headers, _ in server.requests]
    assert keys[0] == keys[1] != keys[2]
    delivery = json.loads(server.requests[0][1])["delivery"]
    assert delivery["delivery_id"] == 41
    assert delivery["alert_id"] == 3


def test_the_channel_has_the_port_shape() -> None:
    hook = WebhookChannel("hook", "http://127.0.0.1:9/hook", secret=SECRET)
    assert isinstance(hook, Channel)
    assert hook.kind == "webhook"
    assert hook.name == "hook"
    assert "s3cret" not in repr(hook)


# --------------------------------------------------------------------------- signatures


def test_verify_signature_accepts_only_the_exact_signed_request() -> None:
    body = b'{"version":"1"}'
    header = sign(SECRET, "1800000000", body)
    assert header.startswith("sha256=")
    assert verify_signature(SECRET, "1800000000", body, header, now=NOW)
    assert verify_signature(SECRET, 1_800_000_000, body, header, now=NOW + 300)
    assert not verify_signature(b"other", "1800000000", body, header, now=NOW)
    assert not verify_signature(SECRET, "1800000000", body + b" ", header, now=NOW)
    assert not verify_signature(SECRET, "1800000001", body, header, now=NOW)
    assert not verify_signature(SECRET, "1800000000", body, header, now=NOW + 301)  # replay
    assert not verify_signature(SECRET, "1800000000", body, header, now=NOW - 301)
    assert not verify_signature(SECRET, "1800000000", body, None, now=NOW)
    assert not verify_signature(SECRET, "1800000000", body, header[7:], now=NOW)
    assert not verify_signature(SECRET, "18e8", body, header, now=NOW)
    assert not verify_signature(SECRET, "1800000000", body, "sha256=zz", now=NOW)
    assert not verify_signature(SECRET, "1800000000", body, "sha256=é", now=NOW)


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("status", "body", "provider_id"),
    [
        (200, "", None),
        (200, '{"id": "abc"}', "abc"),
        (201, '{"id": 12}', "12"),
        (202, "accepted", None),
        (204, "", None),
        (200, '["id"]', None),
    ],
)
async def test_2xx_is_a_receipt_with_the_receivers_id(
    server: Server, channel: WebhookChannel, status: int, body: str, provider_id: str | None
) -> None:
    server.handler = answer_with(status, body)
    assert await channel.send(MESSAGE, "t") == Receipt(provider_message_id=provider_id)


async def test_an_id_arriving_in_pieces_is_read_whole(
    server: Server, channel: WebhookChannel
) -> None:
    async def slowly(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        await response.write(b'{"id": "in-')
        await asyncio.sleep(0.05)
        await response.write(b'pieces"}')
        await response.write_eof()
        return response

    server.handler = slowly
    assert (await channel.send(MESSAGE, "t")).provider_message_id == "in-pieces"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (408, Transient),
        (500, Transient),
        (502, Transient),
        (503, Transient),
        (599, Transient),
        (410, RecipientGone),
        (400, Permanent),
        (401, Permanent),
        (403, Permanent),
        (404, Permanent),
        (422, Permanent),
    ],
)
async def test_error_statuses_map_to_error_classes(
    server: Server, channel: WebhookChannel, status: int, error: type[Exception]
) -> None:
    server.handler = answer_with(status, "no\x00 such\n  hook " + "x" * 500)
    with pytest.raises(error) as raised:
        await channel.send(MESSAGE, "t")
    assert type(raised.value) is error
    text = str(raised.value)
    assert str(status) in text
    assert "no such hook x" in text  # a short, printable excerpt of the body
    assert len(text) < 300


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirects_are_not_followed(
    server: Server, channel: WebhookChannel, status: int
) -> None:
    server.handler = answer_with(status, headers={"Location": "/elsewhere"})
    with pytest.raises(Permanent, match=str(status)):
        await channel.send(MESSAGE, "t")
    assert "/elsewhere" not in server.hits


async def test_429_carries_retry_after_seconds(server: Server, channel: WebhookChannel) -> None:
    server.handler = answer_with(429, "slow", {"Retry-After": "7"})
    with pytest.raises(RateLimited) as raised:
        await channel.send(MESSAGE, "t")
    assert raised.value.retry_after == 7.0


async def test_429_carries_retry_after_as_an_http_date(
    server: Server, channel: WebhookChannel
) -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    server.handler = answer_with(429, "slow", {"Retry-After": when})
    with pytest.raises(RateLimited) as raised:
        await channel.send(MESSAGE, "t")
    assert raised.value.retry_after == 90.0


async def test_429_without_retry_after_waits_one_second(
    server: Server, channel: WebhookChannel
) -> None:
    server.handler = answer_with(429)
    with pytest.raises(RateLimited) as raised:
        await channel.send(MESSAGE, "t")
    assert raised.value.retry_after == 1.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, 1.0),
        ("", 1.0),
        ("0", 0.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("soon", 1.0),
        ("nan", 1.0),
        ("inf", 1.0),
        (format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True), 30.0),
        (format_datetime(datetime.fromtimestamp(NOW - 30, UTC), usegmt=True), 0.0),
        ("Sun, 06 Nov 1994 08:49:37", 1.0),  # no zone: not an HTTP-date
    ],
)
def test_retry_after_parsing(value: str | None, seconds: float) -> None:
    assert retry_after_s(value, now=NOW) == seconds


# --------------------------------------------------------------------------- lost answers


async def test_a_timeout_after_the_request_left_is_sent_but_unknown(server: Server) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.Response()

    server.handler = slow
    hook = WebhookChannel("hook", server.url, secret=SECRET, timeout_s=0.2)
    try:
        with pytest.raises(SentButUnknown):
            await hook.send(MESSAGE, "t")
    finally:
        await hook.aclose()
    assert len(server.requests) == 1  # it did arrive: exactly the ambiguity


async def test_a_reset_after_the_request_left_is_sent_but_unknown(
    server: Server, channel: WebhookChannel
) -> None:
    async def reset(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    server.handler = reset
    with pytest.raises(SentButUnknown):
        await channel.send(MESSAGE, "t")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_transient() -> None:
    hook = WebhookChannel("hook", f"http://127.0.0.1:{_closed_port()}/hook", secret=SECRET)
    try:
        with pytest.raises(Transient) as raised:
            await hook.send(MESSAGE, "t")
    finally:
        await hook.aclose()
    assert type(raised.value) is Transient
    assert isinstance(raised.value.__cause__, aiohttp.ClientConnectorError)


async def test_a_malformed_url_is_permanent() -> None:
    hook = WebhookChannel("hook", "http://", secret=SECRET)
    try:
        with pytest.raises(Permanent):
            await hook.send(MESSAGE, "t")
    finally:
        await hook.aclose()


@pytest.mark.parametrize(
    ("error", "left", "expected"),
    [
        (aiohttp.ServerDisconnectedError(), False, Transient),
        (aiohttp.ServerDisconnectedError(), True, SentButUnknown),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), False, Transient),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), True, SentButUnknown),
        (aiohttp.ClientPayloadError("cut"), True, SentButUnknown),
        (aiohttp.SocketTimeoutError("read"), True, SentButUnknown),
        (TimeoutError(), True, SentButUnknown),
        (TimeoutError(), False, Transient),
        (aiohttp.ConnectionTimeoutError("connect"), True, Transient),
        (RuntimeError("a bug in the client"), True, SentButUnknown),
        (RuntimeError("a bug in the client"), False, Transient),
    ],
)
def test_a_lost_answer_is_ambiguous_only_once_the_request_left(
    error: BaseException, left: bool, expected: type[Exception]
) -> None:
    mapped = classify(error, url="http://h/", request_left=left, now=NOW)
    assert type(mapped) is expected


# --------------------------------------------------------------------------- sessions


async def test_a_session_passed_in_stays_open_and_tracks_sends(server: Server) -> None:
    async with aiohttp.ClientSession(trace_configs=[send_tracking()]) as session:
        hook = WebhookChannel("hook", server.url, secret=SECRET, session=session)
        assert (await hook.send(MESSAGE, "t")).provider_message_id == "msg-1"
        await hook.aclose()
        assert not session.closed
        hook = WebhookChannel(
            "hook", f"http://127.0.0.1:{_closed_port()}/hook", secret=SECRET, session=session
        )
        with pytest.raises(Transient):
            await hook.send(MESSAGE, "t")


async def test_an_untracked_session_judges_lost_answers_conservatively(server: Server) -> None:
    async def reset(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    server.handler = reset
    async with aiohttp.ClientSession() as session:
        hook = WebhookChannel("hook", server.url, secret=SECRET, session=session)
        with pytest.raises(SentButUnknown):
            await hook.send(MESSAGE, "t")
        refused = WebhookChannel(
            "hook", f"http://127.0.0.1:{_closed_port()}/hook", secret=SECRET, session=session
        )
        with pytest.raises(Transient):  # a refused connection is known never to have left
            await refused.send(MESSAGE, "t")


async def test_aclose_closes_the_channels_own_session(server: Server) -> None:
    hook = WebhookChannel("hook", server.url, secret=SECRET)
    await hook.send(MESSAGE, "t")
    session: Any = hook._session
    assert session is not None and not session.closed
    await hook.aclose()
    assert session.closed
    await hook.aclose()  # twice is harmless
    await hook.send(MESSAGE, "t")  # and a closed channel reopens on use
    await hook.aclose()
