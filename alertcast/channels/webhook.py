"""The ``webhook`` channel: POST each message as signed, versioned JSON to a receiver's URL.

A webhook is how a partner system (a city's siren controller, a newsroom, a
radio station's automation) takes alerts without an SDK. What the receiver
gets, and why:

* **A versioned body** (``{"version": "1", "delivery": {...}, "message": {...}}``)
  so the shape can change without breaking receivers that check the version.
* **A signature** (``X-Alertcast-Signature: sha256=<hex>``, an HMAC-SHA256 of
  ``"<timestamp>.<body>"`` with a shared secret) and the signed timestamp
  (``X-Alertcast-Timestamp``), so a receiver can refuse forged and replayed
  warnings: see :func:`verify_signature`.
* **An idempotency key** (``Idempotency-Key``), the same for every attempt of
  one message to one target, because a request whose answer was lost is sent
  again and the receiver is the only one who can tell it already has it.

Failures are classified in one function, :func:`classify`, into the error
classes the retry policy understands. The hard case is a request that may
have arrived: once any byte of it was handed to the connection, a timeout or
a dropped connection is :class:`~alertcast.errors.SentButUnknown`, never
``Transient``, so that it is not silently sent twice. Knowing whether bytes
left needs aiohttp's request tracing (:func:`send_tracking`); a session
passed in without it is judged conservatively (any failure after the
connection opened counts as possibly sent).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, overload

import aiohttp
import structlog

from alertcast.audit import canonical_json
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
from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

log = structlog.get_logger(__name__)

PAYLOAD_VERSION = "1"
TIMESTAMP_HEADER = "X-Alertcast-Timestamp"
SIGNATURE_HEADER = "X-Alertcast-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_PREFIX = "sha256="

DEFAULT_RETRY_AFTER_S = 1.0
"""Wait after a 429 that did not say how long (or said it in a form we cannot read)."""

EXCERPT_CHARS = 200
"""Characters of a refusing receiver's body kept in the error, enough to tell why."""

MAX_RESPONSE_BYTES = 64 * 1024
"""Bytes of a response body read at most: a receiver's answer is an id or an error text."""


# --------------------------------------------------------------------------- signing


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (unix seconds, as text)."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: str | int,
    body: bytes,
    header: str | None,
    *,
    now: float,
    tolerance_s: float = 300,
) -> bool:
    """True when ``header`` signs ``body`` at ``timestamp`` and the timestamp is recent.

    For receivers (and tests). ``now`` is the receiver's clock in unix
    seconds: a timestamp more than ``tolerance_s`` away is refused, so a
    captured request cannot be replayed later. The digests are compared in
    constant time, so the comparison leaks nothing about the expected value.
    """
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    text = str(timestamp).strip()
    if not text.isdigit():
        return False
    if abs(now - int(text)) > tolerance_s:
        return False
    expected = sign(secret, text, body)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("ascii", "replace"))


def idempotency_key(message: OutboundMessage, target: str) -> str:
    """The same key for every attempt of ``message`` to ``target``; different otherwise.

    The delivery id, when the message carries one, names the ledger row
    itself; without it the key covers the target and the whole message
    (including its alert id when present), so two different alerts to one
    target never share a key.
    """
    delivery_id = message.extra.get("delivery_id")
    if delivery_id is not None:
        material = canonical_json({"delivery_id": str(delivery_id), "target": target})
    else:
        material = canonical_json({"target": target, "message": message.to_json()})
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def payload(message: OutboundMessage, target: str, key: str, version: str) -> dict[str, Any]:
    """The JSON body sent for ``message`` to ``target``."""
    delivery: dict[str, Any] = {"target": target, "idempotency_key": key}
    for name in ("alert_id", "delivery_id"):
        if message.extra.get(name) is not None:
            delivery[name] = message.extra[name]
    return {"version": version, "delivery": delivery, "message": message.to_json()}


# --------------------------------------------------------------------------- failures


@dataclass(frozen=True, slots=True)
class Answer:
    """What a receiver answered: the status, its headers and (the start of) its body."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""


def retry_after_s(value: str | None, *, now: float) -> float:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date."""
    if value is None or not value.strip():
        return DEFAULT_RETRY_AFTER_S
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return DEFAULT_RETRY_AFTER_S
        if when.tzinfo is None:  # an HTTP-date is GMT even when it does not say so
            return DEFAULT_RETRY_AFTER_S
        return max(0.0, when.timestamp() - now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, infinities
        return DEFAULT_RETRY_AFTER_S
    return max(0.0, seconds)


def excerpt(body: bytes) -> str:
    """A short, printable excerpt of a receiver's body for an operator's error message."""
    text = body[: EXCERPT_CHARS * 4].decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


@overload
def classify(
    answer: Answer, *, url: str, request_left: bool, now: float
) -> ChannelError | None: ...


@overload
def classify(answer: Exception, *, url: str, request_left: bool, now: float) -> ChannelError: ...


def classify(
    answer: Answer | Exception,
    *,
    url: str,
    request_left: bool,
    now: float,
) -> ChannelError | None:
    """The one place webhook failures become error classes; None means accepted.

    ``answer`` is the receiver's answer or the exception that replaced it;
    ``request_left`` says whether any byte of the request was handed to the
    connection (after which the receiver may have acted on it). Any failure
    after that point, whatever its type (a timeout, a reset, a broken
    response, an unexpected error inside the HTTP client), may hide a
    delivered message, so it is ``SentButUnknown``; before it, ``Transient``.
    """
    if isinstance(answer, Answer):
        status = answer.status
        if 200 <= status < 300:
            return None
        what = f"{url} answered {status}"
        detail = excerpt(answer.body)
        text = f"{what}: {detail}" if detail else what
        if status == 429:
            wait = retry_after_s(answer.headers.get("Retry-After"), now=now)
            return RateLimited(f"{text} (retry after {wait:g} s)", wait)
        if status == 408 or 500 <= status < 600:
            return Transient(text)
        if status == 410:
            return RecipientGone(text)
        if 300 <= status < 400:
            where = answer.headers.get("Location", "")
            return Permanent(
                f"{what}: redirects are not followed; configure {where or 'the target'}"
            )
        return Permanent(text)
    error = answer
    name = type(error).__name__
    if isinstance(error, aiohttp.InvalidURL):
        return Permanent(f"{url}: not a usable URL ({name})")
    if isinstance(error, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return Transient(f"{url}: cannot connect ({name}: {error})")
    if not request_left:
        return Transient(f"{url}: the request did not leave ({name}: {error})")
    return SentButUnknown(f"{url}: no answer after the request was sent ({name}: {error})")


# --------------------------------------------------------------------------- tracing


class _Attempt:
    """Per-request state the trace callbacks fill in: did any byte of the request leave?"""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = False


class _SendTracking(aiohttp.TraceConfig):
    """Marks an :class:`_Attempt` as soon as aiohttp starts writing the request.

    The headers signal fires before the bytes reach the socket, which errs on
    the safe side: a failure after it is taken as "may have been received".
    """

    def __init__(self) -> None:
        super().__init__()
        self.on_request_headers_sent.append(_mark_left)
        self.on_request_chunk_sent.append(_mark_left)


async def _mark_left(
    _session: aiohttp.ClientSession, context: SimpleNamespace, _params: object
) -> None:
    attempt = getattr(context, "trace_request_ctx", None)
    if isinstance(attempt, _Attempt):
        attempt.left = True


def send_tracking() -> aiohttp.TraceConfig:
    """The trace config a shared session needs so the channel can tell "never left" apart.

    Pass it to ``aiohttp.ClientSession(trace_configs=[send_tracking()])`` when
    handing a session to :class:`WebhookChannel`.
    """
    return _SendTracking()


def _tracks_sends(session: aiohttp.ClientSession) -> bool:
    return any(isinstance(config, _SendTracking) for config in session.trace_configs)


# --------------------------------------------------------------------------- channel


class WebhookChannel:
    """POSTs each message to ``url``; one instance per receiver.

    ``secret`` signs every request (``None`` sends unsigned requests, for a
    receiver on a private network that cannot check them). Without a
    ``session`` the channel opens its own on first use and closes it in
    :meth:`aclose`; a session passed in stays the caller's.
    """

    kind = "webhook"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: bytes | None,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 10.0,
        version: str = PAYLOAD_VERSION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._name = name
        self.url = url
        self._secret = secret
        self._session = session
        self._owns_session = session is None
        self._tracked = session is None or _tracks_sends(session)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.version = version
        self.clock = clock
        if not self._tracked:
            log.warning(
                "webhook.untracked_session",
                channel=name,
                hint="pass trace_configs=[send_tracking()] to the session",
            )

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:  # the secret never appears in a repr or a log
        return f"WebhookChannel(name={self._name!r}, url={self.url!r})"

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(trace_configs=[send_tracking()])
        return self._session

    def request(self, message: OutboundMessage, target: str) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the request for ``message`` to ``target``."""
        key = idempotency_key(message, target)
        body = json.dumps(
            payload(message, target, key, self.version), ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: timestamp,
            IDEMPOTENCY_HEADER: key,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        return body, headers

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        body, headers = self.request(message, target)
        attempt = _Attempt()
        if not self._tracked:
            attempt.left = True  # cannot tell: assume the worst once the request is under way
        try:
            async with self._client().post(
                self.url,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                trace_request_ctx=attempt,
            ) as response:
                answer = Answer(response.status, dict(response.headers), b"")
                try:
                    answer = Answer(answer.status, answer.headers, await _read_limited(response))
                except (TimeoutError, aiohttp.ClientError) as exc:
                    # The status line already tells what the receiver decided.
                    log.info("webhook.body_unread", channel=self._name, error=type(exc).__name__)
        except Exception as exc:  # cancellation (a BaseException) passes through untouched
            raise classify(exc, url=self.url, request_left=attempt.left, now=self.clock()) from exc
        error = classify(answer, url=self.url, request_left=attempt.left, now=self.clock())
        if error is not None:
            raise error
        return Receipt(provider_message_id=_provider_id(answer.body))

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()


async def _read_limited(response: aiohttp.ClientResponse) -> bytes:
    """The body, or its first :data:`MAX_RESPONSE_BYTES` bytes: enough for an id or an error."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BYTES:
        chunk = await response.content.read(MAX_RESPONSE_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _provider_id(body: bytes) -> str | None:
    """The receiver's id for the message: ``"id"`` of a JSON object body, when there is one."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    value = data.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value)[:200] or None


def from_config(channel: ChannelConfig, context: ChannelContext) -> WebhookChannel:
    """The webhook of ``channels/NAME.toml``: ``options.url``, ``options.timeout_s`` and the
    HMAC key from the environment variable named by ``secrets.signing_secret``."""
    url = channel.options.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ConfigError(
            [ConfigProblem(str(channel.file), "options.url", "must be an http(s) URL")]
        )
    timeout = channel.options.get("timeout_s", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(
            [ConfigProblem(str(channel.file), "options.timeout_s", "must be a number > 0")]
        )
    secret = channel.secret("signing_secret")
    return WebhookChannel(
        channel.name,
        url,
        secret=secret.encode("utf-8") if secret else None,
        timeout_s=float(timeout),
    )
