"""A fake Twilio Messaging API that speaks the real wire protocol, for the SDK to talk to.

It serves, on 127.0.0.1, the two routes of Api v2010 the channels use
(paths as in ``twilio_api_v2010.json``):

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``
    form-encoded ``To``, ``From`` / ``MessagingServiceSid``, ``Body`` or
    ``ContentSid`` + ``ContentVariables``, ``StatusCallback``; answers 201 with
    a Message resource (``sid`` "SM" + 32 hex, ``status`` queued, or accepted
    for a Messaging Service without ``From``; ``num_segments`` as text, ...).
``GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json``
    the Message as it is now (its status follows the callbacks sent).

Both need HTTP Basic auth with the account SID and auth token; otherwise 401
with Twilio's error body (code 20003). Every error body is Twilio's shape:
``{"code": N, "message": ..., "more_info": "https://www.twilio.com/docs/errors/N",
"status": HTTP}``. Missing parameters are refused with Twilio's codes (21604
no ``To``, 21603 no sender, 21602 no body).

Knobs, by recipient (the ``To`` value as sent, e.g. ``+5255...`` or
``whatsapp:+5255...``):

* ``errors[to] = code``: answer with that Twilio error (status from
  :data:`ERRORS`; 20429 is a 429, with ``Retry-After`` when ``retry_after``
  is set).
* ``slow[to] = seconds``: read the request, then wait that long before
  answering (past the client's timeout: the message was accepted but the
  answer never came back).
* ``outcomes[to] = ("undelivered", 30007)``: the final status callback
  (default ``("delivered", None)``).

After accepting a message with a ``StatusCallback``, the fake POSTs
``sent`` and then the final status to it, form-encoded and signed as Twilio
signs (``X-Twilio-Signature`` = base64 HMAC-SHA1, keyed with the auth token,
of the URL followed by each parameter name and value in name order). The
signature is computed here from that description, not with the SDK, so the
SDK's validator on the receiving side is really tested. With
``hold_callbacks`` the callbacks wait for :meth:`FakeTwilio.release_callbacks`
(so a test can let the sender record its outcome first).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from alertcast.sms import count_sms

API_VERSION = "2010-04-01"
CREATE_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
FETCH_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
ROUTES = (("post", CREATE_PATH), ("get", FETCH_PATH))
"""(method, path template) of every route, as the OpenAPI document spells them."""

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
"""Status callbacks go only to these hosts; others are recorded with ``answer = -1``."""

ERRORS: Mapping[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
    20503: (503, "Service Unavailable"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21602: (400, "Message body is required."),
    21603: (400, "The 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    30007: (400, "Message filtered by the carrier"),
    63016: (
        400,
        "Failed to send freeform message because you are outside the allowed window."
        " If you are using WhatsApp, please use a Message Template.",
    ),
}
"""Twilio error code → (HTTP status, message), as Twilio answers them."""


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """``X-Twilio-Signature`` of a POST of ``params`` to ``url``."""
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def error_body(code: int, message: str | None = None) -> tuple[int, dict[str, Any]]:
    status, text = ERRORS.get(code, (400, "Error"))
    return status, {
        "code": code,
        "message": message or text,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _rfc2822(at: datetime) -> str:
    return format_datetime(at.astimezone(UTC), usegmt=False).replace("-0000", "+0000")


@dataclass
class Callback:
    """One status callback the fake sent, and what the receiver answered."""

    url: str
    params: dict[str, str]
    signature: str
    answer: int | None = None


@dataclass
class FakeTwilio:
    """The fake API on ``url`` (``async with FakeTwilio(sid, token) as fake``)."""

    account_sid: str
    auth_token: str
    errors: dict[str, int] = field(default_factory=dict)
    slow: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    retry_after: str | None = None
    hold_callbacks: bool = False
    requests: list[dict[str, str]] = field(default_factory=list)
    """The form parameters of every create request that passed authentication."""
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    callbacks: list[Callback] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._release = asyncio.Event()
        self._answered = asyncio.Condition()
        if not self.hold_callbacks:
            self._release.set()

    async def __aenter__(self) -> FakeTwilio:
        app = web.Application()
        app.router.add_post(CREATE_PATH.replace("{AccountSid}", "{account}"), self._create)
        app.router.add_get(
            FETCH_PATH.replace("{AccountSid}", "{account}").replace("{Sid}", "{sid}"),
            self._fetch,
        )
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ callbacks

    def release_callbacks(self) -> None:
        """Let held status callbacks go."""
        self._release.set()

    async def callbacks_done(self, count: int, *, timeout_s: float = 10.0) -> list[Callback]:
        """Wait until ``count`` callbacks were answered; they, in the order sent."""

        def answered() -> bool:
            return sum(1 for c in self.callbacks if c.answer is not None) >= count

        async with asyncio.timeout(timeout_s), self._answered:
            await self._answered.wait_for(answered)
        return list(self.callbacks)

    async def _send_callbacks(self, sid: str, url: str) -> None:
        await self._release.wait()
        message = self.messages[sid]
        final, code = self.outcomes.get(message["to"], ("delivered", None))
        for status, error in (("sent", None), (final, code)):
            message["status"] = status
            message["error_code"] = error
            message["error_message"] = ERRORS[error][1] if error in ERRORS else None
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": API_VERSION,
                "From": message["from"] or "",
                "MessageSid": sid,
                "MessageStatus": status,
                "SmsSid": sid,
                "SmsStatus": status,
                "To": message["to"],
            }
            if message["messaging_service_sid"]:
                params["MessagingServiceSid"] = message["messaging_service_sid"]
            if error is not None:
                params["ErrorCode"] = str(error)
            callback = Callback(url, params, twilio_signature(self.auth_token, url, params))
            self.callbacks.append(callback)
            assert self._session is not None
            if urlsplit(url).hostname not in LOCAL_HOSTS:
                callback.answer = -1  # never leaves the machine
            else:
                try:
                    async with self._session.post(
                        url, data=params, headers={"X-Twilio-Signature": callback.signature}
                    ) as response:
                        callback.answer = response.status
                except aiohttp.ClientError:
                    callback.answer = 0
            async with self._answered:
                self._answered.notify_all()

    # ------------------------------------------------------------------ routes

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:  # not base64, or not UTF-8
            return False
        return (
            hmac.compare_digest(login.encode(), self.account_sid.encode())
            and hmac.compare_digest(password.encode(), self.auth_token.encode())
            and request.match_info["account"] == self.account_sid
        )

    @staticmethod
    def _error(code: int, headers: Mapping[str, str] | None = None) -> web.Response:
        status, body = error_body(code)
        return web.json_response(body, status=status, headers=headers)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._error(20003)
        form = await request.post()
        params = {key: str(value) for key, value in form.items()}
        self.requests.append(params)
        to = params.get("To")
        if not to:
            return self._error(21604)
        if not params.get("From") and not params.get("MessagingServiceSid"):
            return self._error(21603)
        if not params.get("Body") and not params.get("ContentSid"):
            return self._error(21602)
        if to in self.errors:
            code = self.errors[to]
            headers = (
                {"Retry-After": self.retry_after} if code == 20429 and self.retry_after else None
            )
            return self._error(code, headers)
        sid = "SM" + secrets.token_hex(16)
        now = datetime.now(UTC)
        body = params.get("Body", "")
        message: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": _rfc2822(now),
            "date_sent": None,
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": params.get("From"),
            "messaging_service_sid": params.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(count_sms(body).segments if body else 1),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if not params.get("From") else "queued",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self.messages[sid] = message
        callback = params.get("StatusCallback")
        if callback:
            task = asyncio.get_running_loop().create_task(self._send_callbacks(sid, callback))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        delay = self.slow.get(to)
        if delay:
            await asyncio.sleep(delay)
        return web.json_response(dict(message), status=201)

    async def _fetch(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._error(20003)
        message = self.messages.get(request.match_info["sid"])
        if message is None:
            return self._error(20404)
        return web.json_response(message)


ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
SID_ENV = "ALERTCAST_TEST_TWILIO_ACCOUNT_SID"
TOKEN_ENV = "ALERTCAST_TEST_TWILIO_AUTH_TOKEN"


def channel_config(kind: str, name: str, fake: FakeTwilio | None, **options: Any) -> Any:
    """A ``ChannelConfig`` for a Twilio channel pointed at ``fake``.

    The secrets are read from :data:`SID_ENV` and :data:`TOKEN_ENV`, which
    the test sets (``monkeypatch.setenv``).
    """
    from pathlib import Path

    from alertcast.config import ChannelConfig

    merged: dict[str, Any] = {"api_url": fake.url if fake else "https://api.twilio.com"}
    merged.update(options)
    return ChannelConfig(
        name=name,
        kind=kind,
        file=Path(f"channels/{name}.toml"),
        secrets={"account_sid": SID_ENV, "auth_token": TOKEN_ENV},
        options=merged,
    )
