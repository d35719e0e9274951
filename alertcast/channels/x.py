"""The ``x`` channel: post alerts from one X account through API v2 (``POST /2/tweets``).

Requests are signed with OAuth 1.0a in user context (RFC 5849, HMAC-SHA1):
the app's consumer key and secret and the account's access token and secret
are four secret roles (``consumer_key``, ``consumer_secret``,
``access_token``, ``access_token_secret``). The body is JSON, which is not
form-encoded, so per RFC 5849 §3.4.1.3 it is *not* part of the signature
base string: only the ``oauth_*`` parameters and any query parameters are.

* **A thread for a long alert**: each part after the first replies
  (``reply.in_reply_to_tweet_id``) to the part before; the receipt names the
  first post. A thread cut in the middle continues on retry instead of
  posting its first parts again (X has no idempotency key, and refuses an
  identical text as a duplicate anyway).
* **Follow-ups**: X has no edit API for most accounts, so an Update is a
  *reply* to the earlier post. A Cancel is *delete*: the dispatcher posts
  the cancellation notice first and only then deletes the earlier post
  (:func:`alertcast.dispatch.followup.send`), so the stale warning cannot
  be found and acted on later while the people who saw it are told.
* **Rate limits**: a 429 waits until ``x-rate-limit-reset`` (epoch seconds),
  or the daily ``x-user-limit-24hour-reset`` when that quota is the one
  spent. A successful answer with ``x-rate-limit-remaining: 0`` is
  remembered and the next send waits for the reset without asking.

Failures are mapped in :func:`classify`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import quote, urlsplit

import aiohttp

from alertcast.channels.http_common import (
    HttpAnswer,
    OptionReader,
    PostedParts,
    QuotaWindow,
    ThreadedPosts,
    by_status,
    epoch_wait_s,
    nothing_to_post,
    thread_key,
)
from alertcast.channels.webhook import classify as classify_exchange
from alertcast.channels.webhook import excerpt, retry_after_s
from alertcast.errors import ChannelError, Permanent, RateLimited
from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

DEFAULT_RATE_LIMIT_WAIT_S = 900.0
"""X's rate-limit windows are 15 minutes: the wait after a 429 that names no reset."""


# --------------------------------------------------------------------------- OAuth 1.0a


def percent_encode(value: str) -> str:
    """RFC 5849 §3.6: UTF-8, then every byte but ``A-Z a-z 0-9 - . _ ~`` as ``%XX``."""
    return quote(value.encode("utf-8"), safe="-._~")


def base_string_uri(url: str) -> str:
    """RFC 5849 §3.4.1.2: lower-case scheme and host, default port dropped, no query."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def signature_base_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 §3.4.1: ``METHOD&uri&normalized-params``, every piece percent-encoded."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in params)
    normalized = "&".join(f"{k}={v}" for k, v in encoded)
    return "&".join(
        (method.upper(), percent_encode(base_string_uri(url)), percent_encode(normalized))
    )


def hmac_sha1_signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    """RFC 5849 §3.4.2: HMAC-SHA1 keyed by ``consumer_secret&token_secret``, base64."""
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode("ascii"), base_string.encode("ascii"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def oauth1_authorization(
    method: str,
    url: str,
    *,
    consumer_key: str,
    consumer_secret: str,
    token: str,
    token_secret: str,
    timestamp: int,
    nonce: str,
    params: Iterable[tuple[str, str]] = (),
) -> str:
    """The ``Authorization: OAuth ...`` header of one request.

    ``params`` are the query parameters (and form-encoded body parameters,
    which this channel never sends); a JSON body is not signed.
    """
    oauth = {
        "oauth_consumer_key": consumer_key,
        "oauth_nonce": nonce,
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(timestamp),
        "oauth_token": token,
        "oauth_version": "1.0",
    }
    base = signature_base_string(method, url, [*oauth.items(), *params])
    oauth["oauth_signature"] = hmac_sha1_signature(base, consumer_secret, token_secret)
    fields = ", ".join(f'{percent_encode(k)}="{percent_encode(v)}"' for k, v in oauth.items())
    return f"OAuth {fields}"


# --------------------------------------------------------------------------- failures


def _detail(answer: HttpAnswer) -> str:
    """The problem's ``detail`` (API v2 errors are RFC 7807-like), else an excerpt."""
    data = answer.json_object()
    for key in ("detail", "title"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        message = errors[0].get("message")
        if isinstance(message, str) and message:
            return message
    return excerpt(answer.body)


def rate_limit_wait_s(headers: Mapping[str, str], *, now: float) -> float:
    """How long a 429 asks to wait: the spent daily quota's reset, else the window's."""
    if (headers.get("x-user-limit-24hour-remaining") or "").strip() == "0":
        daily = epoch_wait_s(headers, "x-user-limit-24hour-reset", now=now)
        if daily is not None:
            return daily
    wait = epoch_wait_s(headers, "x-rate-limit-reset", now=now)
    if wait is not None:
        return wait
    if headers.get("Retry-After"):
        return retry_after_s(headers.get("Retry-After"), now=now)
    return DEFAULT_RATE_LIMIT_WAIT_S


@overload
def classify(answer: HttpAnswer, *, url: str, now: float) -> ChannelError | None: ...


@overload
def classify(
    answer: Exception, *, url: str, now: float, request_left: bool = True
) -> ChannelError: ...


def classify(
    answer: HttpAnswer | Exception, *, url: str, now: float, request_left: bool = True
) -> ChannelError | None:
    """The one place X failures become error classes; None means accepted.

    401: the signature or the credentials were refused (wrong or revoked
    keys, or this host's clock far off). 403: forbidden for good: a
    duplicate of a recent post, an app without write access, a suspended
    account. 400 and 404 are refusals of the request itself.
    """
    if isinstance(answer, Exception):
        return classify_exchange(answer, url=url, request_left=request_left, now=now)
    status = answer.status
    if 200 <= status < 300:
        return None
    text = f"{url} answered {status}: {_detail(answer)}"
    if status == 429:
        wait = rate_limit_wait_s(answer.headers, now=now)
        return RateLimited(f"{text} (retry after {wait:g} s)", wait)
    if status == 401:
        return Permanent(f"{text}; check the four OAuth secrets and this host's clock")
    if status == 403:
        if "duplicate" in text.lower():
            return Permanent(f"{text}; X refuses a text identical to a recent post")
        return Permanent(f"{text}; check the app's read-and-write permission and the account")
    return by_status(status, text)


# --------------------------------------------------------------------------- channel


class XChannel(ThreadedPosts):
    """Posts from one X account; one instance per account."""

    kind = "x"
    follow_ups = frozenset({"reply", "delete"})

    def __init__(
        self,
        name: str,
        *,
        consumer_key: str,
        consumer_secret: str,
        access_token: str,
        access_token_secret: str,
        api_url: str = "https://api.x.com",
        timeout_s: float = 15.0,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        super().__init__(name, timeout_s=timeout_s, session=session, clock=clock)
        self.api_url = api_url.rstrip("/")
        self._credentials = (consumer_key, consumer_secret, access_token, access_token_secret)
        self.nonce = nonce
        self._quota = QuotaWindow(clock)
        self._posted = PostedParts()

    def __repr__(self) -> str:  # the secrets never appear in a repr or a log
        return f"XChannel(name={self._name!r}, api_url={self.api_url!r})"

    def follow_up_for(self, msg_type: str) -> str | None:
        return {"Update": "reply", "Cancel": "delete"}.get(msg_type)

    def authorization(self, method: str, url: str) -> str:
        consumer_key, consumer_secret, token, token_secret = self._credentials
        return oauth1_authorization(
            method,
            url,
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            token=token,
            token_secret=token_secret,
            timestamp=int(self.clock()),
            nonce=self.nonce(),
        )

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> HttpAnswer:
        self._quota.check(f"{self.api_url} ({self._name})")
        url = f"{self.api_url}{path}"
        headers = {"Authorization": self.authorization(method, url)}
        answer = await self._http.request(method, url, json_body=body, headers=headers)
        error = classify(answer, url=url, now=self.clock())
        if error is not None:
            raise error
        self._quota.note(
            answer.headers.get("x-rate-limit-remaining"),
            epoch_wait_s(answer.headers, "x-rate-limit-reset", now=self.clock()),
            event="x.quota_spent",
            channel=self._name,
        )
        return answer

    async def _thread(
        self, message: OutboundMessage, target: str, *, reply_to: str | None
    ) -> list[str]:
        if not message.parts:
            raise nothing_to_post(self._name)

        async def post(index: int, earlier: Sequence[str]) -> str:
            body: dict[str, Any] = {"text": message.parts[index]}
            parent = earlier[-1] if earlier else reply_to
            if parent is not None:
                body["reply"] = {"in_reply_to_tweet_id": parent}
            answer = await self._call("POST", "/2/tweets", body)
            data = answer.json_object().get("data")
            post_id = data.get("id") if isinstance(data, dict) else None
            if not isinstance(post_id, str) or not post_id:
                raise Permanent(f"{self.api_url}/2/tweets accepted the post but named no id")
            return post_id

        key = thread_key(message, target, reply_to)
        return await self._posted.thread(key, len(message.parts), post)

    async def edit(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        raise Permanent(f"{self._name}: X posts cannot be edited through the API")

    async def delete(self, provider_message_id: str, target: str) -> None:
        answer = await self._call("DELETE", f"/2/tweets/{provider_message_id}", None)
        data = answer.json_object().get("data")
        if not (isinstance(data, dict) and data.get("deleted") is True):
            raise Permanent(f"{self._name}: X did not delete post {provider_message_id}")


def from_config(channel: ChannelConfig, context: ChannelContext) -> XChannel:
    """The account of ``channels/NAME.toml``: four OAuth 1.0a secrets and ``options.api_url``."""
    read = OptionReader(channel)
    api_url = read.url("api_url", "https://api.x.com")
    timeout = read.number("timeout_s", 15.0)
    consumer_key = read.secret("consumer_key")
    consumer_secret = read.secret("consumer_secret")
    access_token = read.secret("access_token")
    access_token_secret = read.secret("access_token_secret")
    read.done()
    return XChannel(
        channel.name,
        consumer_key=consumer_key,
        consumer_secret=consumer_secret,
        access_token=access_token,
        access_token_secret=access_token_secret,
        api_url=api_url,
        timeout_s=timeout,
    )


__all__ = [
    "XChannel",
    "classify",
    "from_config",
    "hmac_sha1_signature",
    "oauth1_authorization",
    "signature_base_string",
]
