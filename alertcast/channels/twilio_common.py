"""What the Twilio SMS and WhatsApp channels share: the client, the target check, the errors.

Both channels create Message resources (``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``)
through the official SDK's asynchronous client; they differ only in how a
message is addressed and worded. Kept here, once:

* **The client.** :class:`TwilioSender` builds the SDK's ``Client`` on the
  first send (building a channel opens nothing) with an HTTP client,
  :class:`RebasedHttpClient`, that swaps the SDK's fixed
  ``https://api.twilio.com`` for ``options.api_url``: the SDK still builds
  every request (path, form parameters, Basic auth, headers) and a test
  points it at a fake Twilio; production leaves the default.
* **Did the request leave?** A timeout before any byte of the request was
  written is safe to retry (``Transient``); after it, Twilio may have queued
  the message and a retry may text everyone twice (``SentButUnknown``). The
  SDK offers no hook per request, so the answer travels in a context variable
  that aiohttp's request tracing fills in (one per send, so concurrent sends
  on one channel never mix up).
* **Errors.** :func:`classify` is the one place where Twilio's answers become
  the error classes the retry policy understands; its table is
  :data:`ERROR_CLASSES`. Carrier filtering (30007) is refused for good *and*
  logged as ``sms.carrier_filtered`` for operators: a filtered warning means
  the text or the sender registration must change, which no retry fixes.
* **Status callbacks.** Each first message carries ``StatusCallback`` =
  ``{site_url}/webhooks/twilio/status?channel=NAME`` (see
  :func:`status_callback_url`). The channel name in the query names the
  auth token that checks Twilio's signature and the ledger rows the receipt
  belongs to, so an SMS and a WhatsApp channel may share one Twilio account.
  The query is part of the signed URL, so it cannot be altered in transit.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import structlog
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from alertcast.channels.webhook import retry_after_s
from alertcast.errors import (
    ChannelError,
    ConfigError,
    ConfigProblem,
    Permanent,
    RateLimited,
    RecipientGone,
    SentButUnknown,
    Transient,
)

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

log = structlog.get_logger(__name__)

DEFAULT_API_URL = "https://api.twilio.com"
"""Where the SDK sends Message requests; ``options.api_url`` replaces it (tests, a proxy)."""

STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
CHANNEL_QUERY = "channel"
"""The query parameter of the status callback URL that names the channel."""

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRY_AFTER_S = 1.0
"""Wait after a 429 that did not say how long."""

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")

# Twilio error codes (https://www.twilio.com/docs/api/errors/NNNNN).
UNSUBSCRIBED = 21610
"""The recipient replied STOP: Twilio refuses to message them until they reply START."""
INVALID_TO = 21211
NOT_MOBILE = 21614
TOO_MANY_REQUESTS = 20429
CARRIER_FILTERED = 30007
OUTSIDE_SESSION = 63016
"""WhatsApp free text outside the 24-hour window that the recipient's last message opened."""

CARRIER_FILTERED_EVENT = "sms.carrier_filtered"
"""The log event (and error text prefix) of a message a carrier filtered."""
OUTSIDE_SESSION_TEXT = "whatsapp.outside_session"
"""The error text prefix of a WhatsApp free-text message refused outside the session."""

ERROR_CLASSES: Mapping[int, type[ChannelError]] = {
    UNSUBSCRIBED: RecipientGone,
    INVALID_TO: Permanent,
    NOT_MOBILE: Permanent,
    CARRIER_FILTERED: Permanent,
    OUTSIDE_SESSION: Permanent,
}
"""Twilio error codes with a class of their own; others follow the HTTP status."""


def check_e164(target: str, *, channel: str) -> str:
    """``target`` when it is an E.164 number (``+`` and 8 to 15 digits); Permanent otherwise.

    Checked before any request: a malformed number in a subscription is
    refused here at no cost instead of by Twilio at the price of a request.
    """
    if not E164.match(target):
        raise Permanent(f"{channel}: {mask(target)!r} is not an E.164 phone number (+ and digits)")
    return target


def mask(number: str) -> str:
    """A phone number fit for a log line: its country prefix and last four digits only."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def status_callback_url(base: str, channel: str) -> str:
    """``base`` with ``?channel=NAME`` added (other query parameters kept)."""
    parts = urlsplit(base)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != CHANNEL_QUERY
    ]
    query.append((CHANNEL_QUERY, channel))
    return urlunsplit(parts._replace(query=urlencode(query)))


# --------------------------------------------------------------------------- errors


def classify(
    error: BaseException,
    *,
    channel: str,
    target: str,
    request_left: bool,
    headers: Mapping[str, str] | None,
    now: float,
) -> ChannelError:
    """The one place Twilio failures become error classes.

    ``error`` is what the SDK raised (a REST error carrying Twilio's code, or
    the HTTP client's exception); ``request_left`` says whether any byte of
    the request was written; ``headers`` are the error answer's headers (for
    ``Retry-After``), when there was an answer.
    """
    if isinstance(error, (TwilioRestException, TwilioServiceException)):
        status = int(error.status or 0)
        code = _code(error.code)
        detail = str(error.msg if isinstance(error, TwilioRestException) else error.title)
        what = f"{channel}: Twilio refused the message (HTTP {status}, error {code}): {detail}"
        if code == TOO_MANY_REQUESTS or status == 429:
            wait = retry_after_s((headers or {}).get("Retry-After"), now=now)
            return RateLimited(f"{what} (retry after {wait:g} s)", wait)
        if code == CARRIER_FILTERED:
            log.error(
                CARRIER_FILTERED_EVENT,
                channel=channel,
                target=mask(target),
                error_code=code,
                hint="a carrier filtered it: review the wording and the sender's registration",
            )
            return Permanent(f"{CARRIER_FILTERED_EVENT}: {what}")
        if code == OUTSIDE_SESSION:
            return Permanent(f"{OUTSIDE_SESSION_TEXT}: {what}")
        special = ERROR_CLASSES.get(code) if code is not None else None
        if special is not None:
            return special(what)
        if status == 408 or status >= 500:
            return Transient(what)
        if status == 401:
            return Permanent(f"{what} (check the account_sid and auth_token secrets)")
        return Permanent(what)
    name = type(error).__name__
    if isinstance(error, aiohttp.InvalidURL):
        return Permanent(f"{channel}: not a usable Twilio URL ({name})")
    if isinstance(error, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return Transient(f"{channel}: cannot connect to Twilio ({name}: {error})")
    if not request_left:
        return Transient(f"{channel}: the request to Twilio did not leave ({name}: {error})")
    return SentButUnknown(f"{channel}: no answer from Twilio after the request was sent ({name})")


def _code(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- HTTP


class _Attempt:
    """One request's state, filled in by the trace callbacks and the HTTP client."""

    __slots__ = ("headers", "left")

    def __init__(self) -> None:
        self.left = False
        self.headers: Mapping[str, str] | None = None


_SDK_LOG = logging.getLogger("alertcast.channels.twilio_sdk")
_SDK_LOG.setLevel(logging.WARNING)
"""The SDK's HTTP client logs each request's URL and headers at INFO: one line per header
per message is noise in a fan-out to a million phones, so only its warnings are kept."""

_ATTEMPT: ContextVar[_Attempt | None] = ContextVar("twilio_attempt", default=None)


async def _mark_left(
    _session: aiohttp.ClientSession, _context: SimpleNamespace, _params: object
) -> None:
    attempt = _ATTEMPT.get()
    if attempt is not None:
        attempt.left = True


def _tracking() -> aiohttp.TraceConfig:
    # The headers signal fires before the bytes reach the socket: a failure
    # after it is taken as "may have been received", the safe side.
    config = aiohttp.TraceConfig()
    config.on_request_headers_sent.append(_mark_left)
    config.on_request_chunk_sent.append(_mark_left)
    return config


class RebasedHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's aiohttp client, sending to ``api_url`` instead of ``https://api.twilio.com``.

    It also applies ``timeout_s`` to every request (the SDK passes none for
    a create) and keeps the headers of each answer for :func:`classify`.
    """

    def __init__(self, api_url: str, timeout_s: float) -> None:
        super().__init__(
            pool_connections=True, trace_configs=[_tracking()], timeout=timeout_s, logger=_SDK_LOG
        )
        self.api_url = api_url.rstrip("/")

    def rebase(self, url: str) -> str:
        """``url`` with its scheme and host (and any base path) taken from ``api_url``."""
        if self.api_url == DEFAULT_API_URL:
            return url
        parts = urlsplit(url)
        base = urlsplit(self.api_url)
        path = base.path.rstrip("/") + parts.path
        return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's signature
        allow_redirects: bool = False,
    ) -> Any:
        headers = dict(headers or {})
        if auth is not None:  # sent as a header: aiohttp deprecates its BasicAuth helper
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        response = await super().request(
            method,
            self.rebase(url),
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout if timeout is not None else self.timeout,
            allow_redirects=allow_redirects,
        )
        attempt = _ATTEMPT.get()
        if attempt is not None:
            attempt.headers = response.headers
        return response


# --------------------------------------------------------------------------- sender


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    """The options both channels read from ``channels/NAME.toml``."""

    account_sid: str
    auth_token: str
    api_url: str = DEFAULT_API_URL
    timeout_s: float = DEFAULT_TIMEOUT_S
    sender: str | None = None
    """``options.from``: the sending number (or, for SMS, short code or sender id)."""
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    """The full callback URL, ``?channel=NAME`` included; None: no callbacks."""

    def __repr__(self) -> str:  # the token never appears in a repr or a log
        return f"TwilioSettings(account_sid={self.account_sid!r}, api_url={self.api_url!r})"


class TwilioSender:
    """Creates Message resources for one channel; the SDK client opens on the first send."""

    def __init__(self, name: str, settings: TwilioSettings) -> None:
        self.name = name
        self.settings = settings
        self._http: RebasedHttpClient | None = None
        self._client: Any = None

    def client(self) -> Any:
        """The SDK client (built on first use, inside the running event loop)."""
        if self._client is None:
            self._http = RebasedHttpClient(self.settings.api_url, self.settings.timeout_s)
            self._client = Client(
                self.settings.account_sid,
                self.settings.auth_token,
                account_sid=self.settings.account_sid,
                http_client=self._http,
                environment={},
            )
        return self._client

    def sender_params(self, address: str = "{}") -> dict[str, str]:
        """``from_`` and/or ``messaging_service_sid``, ``address`` wrapping the number."""
        params: dict[str, str] = {}
        if self.settings.sender is not None:
            params["from_"] = address.format(self.settings.sender)
        if self.settings.messaging_service_sid is not None:
            params["messaging_service_sid"] = self.settings.messaging_service_sid
        return params

    async def create(self, target: str, **params: Any) -> str:
        """Create one Message; its SID. Failures raise the class :func:`classify` picks."""
        messages = self.client().messages
        attempt = _Attempt()
        token = _ATTEMPT.set(attempt)
        try:
            created = await messages.create_async(**params)
        except Exception as exc:  # cancellation (a BaseException) passes through untouched
            raise classify(
                exc,
                channel=self.name,
                target=target,
                request_left=attempt.left,
                headers=attempt.headers,
                now=time.time(),
            ) from exc
        finally:
            _ATTEMPT.reset(token)
        sid = getattr(created, "sid", None)
        if not isinstance(sid, str) or not sid:
            raise SentButUnknown(f"{self.name}: Twilio accepted the message but sent no SID")
        return sid

    async def create_parts(
        self, target: str, requests: list[dict[str, Any]], *, event: str
    ) -> list[str]:
        """Create one Message per request, in order; their SIDs.

        A part that fails after an earlier one was accepted leaves the
        recipient with half a message, and resending the whole would repeat
        what arrived: that is ``SentButUnknown`` (logged as ``event``), and
        the retry policy decides.
        """
        sids: list[str] = []
        for index, params in enumerate(requests):
            try:
                sids.append(await self.create(target, **params))
            except ChannelError as exc:
                if not sids:
                    raise
                log.error(
                    event,
                    channel=self.name,
                    sent_parts=len(sids),
                    parts=len(requests),
                    first_sid=sids[0],
                    error=type(exc).__name__,
                )
                raise SentButUnknown(
                    f"{self.name}: part {index + 1} of {len(requests)} failed after"
                    f" {sids[0]} was accepted: {exc}"
                ) from exc
        return sids

    async def aclose(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()


class TwilioChannel:
    """What the SMS and WhatsApp channels are alike in: a name, a sender, its settings."""

    def __init__(self, name: str, settings: TwilioSettings) -> None:
        self._name = name
        self._sender = TwilioSender(name, settings)

    @property
    def name(self) -> str:
        return self._name

    @property
    def settings(self) -> TwilioSettings:
        return self._sender.settings

    def __repr__(self) -> str:  # the settings (and their token) stay out of a repr
        return f"{type(self).__name__}(name={self._name!r})"

    async def aclose(self) -> None:
        await self._sender.aclose()


# --------------------------------------------------------------------------- configuration


def read_settings(
    channel: ChannelConfig, context: ChannelContext, problems: list[ConfigProblem]
) -> TwilioSettings | None:
    """The shared options of ``channel``; problems are appended (None when any was found)."""
    file = str(channel.file)
    before = len(problems)
    options = channel.options
    account_sid = channel.secret("account_sid")
    auth_token = channel.secret("auth_token")
    if not account_sid:
        problems.append(
            ConfigProblem(file, "secrets.account_sid", "names no set environment variable")
        )
    elif not ACCOUNT_SID.match(account_sid):
        problems.append(
            ConfigProblem(file, "secrets.account_sid", "is not an Account SID (AC + 32 hex)")
        )
    if not auth_token:
        problems.append(
            ConfigProblem(file, "secrets.auth_token", "names no set environment variable")
        )
    api_url = options.get("api_url", DEFAULT_API_URL)
    if not isinstance(api_url, str) or not api_url.startswith(("https://", "http://")):
        problems.append(ConfigProblem(file, "options.api_url", "must be an http(s) URL"))
    timeout = options.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        problems.append(ConfigProblem(file, "options.timeout_s", "must be a number > 0"))
    sender = options.get("from")
    service = options.get("messaging_service_sid")
    if sender is not None and (not isinstance(sender, str) or not sender.strip()):
        problems.append(ConfigProblem(file, "options.from", "must be a text"))
    if service is not None and (
        not isinstance(service, str) or not MESSAGING_SERVICE_SID.match(service)
    ):
        problems.append(
            ConfigProblem(
                file,
                "options.messaging_service_sid",
                "is not a Messaging Service SID (MG + 32 hex)",
            )
        )
    if sender is None and service is None:
        problems.append(
            ConfigProblem(file, "options.from", "set `from` or `messaging_service_sid`")
        )
    callback_base = options.get("status_callback_url")
    if callback_base is not None:
        if not isinstance(callback_base, str) or not callback_base.startswith(
            ("https://", "http://")
        ):
            problems.append(
                ConfigProblem(file, "options.status_callback_url", "must be an http(s) URL")
            )
            callback_base = None
    elif context.site_url:
        callback_base = context.site_url.rstrip("/") + STATUS_CALLBACK_PATH
    if len(problems) > before:
        return None
    assert account_sid is not None and auth_token is not None
    if callback_base is None:
        log.warning(
            "twilio.no_status_callback",
            channel=channel.name,
            hint="set service.site_url or options.status_callback_url to learn of deliveries",
        )
    return TwilioSettings(
        account_sid=account_sid,
        auth_token=auth_token,
        api_url=str(api_url).rstrip("/"),
        timeout_s=float(timeout),
        sender=sender.strip() if isinstance(sender, str) else None,
        messaging_service_sid=service if isinstance(service, str) else None,
        status_callback=(
            status_callback_url(callback_base, channel.name) if callback_base else None
        ),
    )


def raise_problems(problems: list[ConfigProblem]) -> None:
    if problems:
        raise ConfigError(problems)
