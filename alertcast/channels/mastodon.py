"""The ``mastodon`` channel: post alerts as statuses of one account on a Mastodon instance.

Spoken over the REST API with a user access token (``Authorization: Bearer``,
secret role ``access_token``, scope ``write:statuses``); the instance is
``options.api_url``. What is sent, and why:

* **A thread for a long alert.** Each part after the first is a reply
  (``in_reply_to_id``) to the part before, so the whole text reads in order
  under the first post. The receipt names the first post: follow-ups act on it.
* **An Idempotency-Key per part**, the same for every attempt of one message
  to one target, so a request whose answer was lost and is sent again
  returns the status Mastodon already created (the instance keeps keys for
  an hour) instead of posting it twice.
* **No content warning by default.** A content warning (``spoiler_text``)
  collapses the post behind a button in most clients: for an evacuation order
  that is one more step between a person and the instruction. Instances
  whose rules ask for warnings on disaster posts can list the severities
  that get one (``content_warning = ["Extreme", "Severe"]``) and its text
  (``content_warning_text``, default "⚠️ ALERTA / WARNING"). Mastodon counts
  the warning against the post's limit, so a part that would no longer fit
  is posted without it (and the fact logged): the warning is dropped, never
  the instruction.
* **Language** as the ISO 639-1 code (``es`` of ``es-MX``), the form the
  API documents, so readers' language filters work.

Follow-ups: an Update *edits* the earlier status (``PUT``; a correction, no
second notification); a Cancel is a *reply* to it, so anyone scrolling back
to the warning sees it was called off. ``delete`` is offered too.

Rate limits: a 429 is :class:`~alertcast.errors.RateLimited` until
``X-RateLimit-Reset`` (an ISO 8601 time) or ``Retry-After``. A *successful*
answer saying ``X-RateLimit-Remaining: 0`` is remembered: the next send
raises ``RateLimited`` until the reset without asking the instance.
All failures are mapped in :func:`classify`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

import aiohttp
import structlog

from alertcast.channel_profiles import mastodon_length
from alertcast.channels.http_common import (
    HttpAnswer,
    OptionReader,
    PostedParts,
    QuotaWindow,
    ThreadedPosts,
    by_status,
    nothing_to_post,
    primary_language,
    thread_key,
)
from alertcast.channels.webhook import classify as classify_exchange
from alertcast.channels.webhook import excerpt, retry_after_s
from alertcast.errors import ChannelError, Permanent, RateLimited
from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

log = structlog.get_logger(__name__)

VISIBILITIES = ("public", "unlisted", "private", "direct")
DEFAULT_CONTENT_WARNING = "⚠️ ALERTA / WARNING"
DEFAULT_RATE_LIMIT_WAIT_S = 60.0
"""Wait after a 429 that said neither ``X-RateLimit-Reset`` nor ``Retry-After``."""


def _error_text(answer: HttpAnswer) -> str:
    """Mastodon's ``{"error": ...}`` message, else an excerpt of the body."""
    error = answer.json_object().get("error")
    return error if isinstance(error, str) and error else excerpt(answer.body)


def reset_wait_s(headers: Any, *, now: float) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (ISO 8601); None when absent or unreadable."""
    value = headers.get("X-RateLimit-Reset")
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


@overload
def classify(
    answer: HttpAnswer, *, url: str, now: float, follow_up: bool = False
) -> ChannelError | None: ...


@overload
def classify(
    answer: Exception, *, url: str, now: float, follow_up: bool = False, request_left: bool = True
) -> ChannelError: ...


def classify(
    answer: HttpAnswer | Exception,
    *,
    url: str,
    now: float,
    follow_up: bool = False,
    request_left: bool = True,
) -> ChannelError | None:
    """The one place Mastodon failures become error classes; None means accepted.

    401/403: the token is wrong, revoked or lacks ``write:statuses`` (the
    operator must fix it). 404: on a follow-up, the earlier status is gone;
    on a send, ``api_url`` does not point at a Mastodon API. 422: the instance
    refused the status itself (too long, bad language): never retried.
    """
    if isinstance(answer, Exception):
        return classify_exchange(answer, url=url, request_left=request_left, now=now)
    status = answer.status
    if 200 <= status < 300:
        return None
    text = f"{url} answered {status}: {_error_text(answer)}"
    if status == 429:
        wait = reset_wait_s(answer.headers, now=now)
        if wait is None:
            header = answer.headers.get("Retry-After")
            wait = retry_after_s(header, now=now) if header else DEFAULT_RATE_LIMIT_WAIT_S
        return RateLimited(f"{text} (retry after {wait:g} s)", wait)
    if status in (401, 403):
        return Permanent(f"{text}; check the access token and its write:statuses scope")
    if status == 404:
        what = "the earlier status is gone" if follow_up else "check options.api_url"
        return Permanent(f"{text}; {what}")
    return by_status(status, text)


class MastodonChannel(ThreadedPosts):
    """Posts to one Mastodon account; one instance per account."""

    kind = "mastodon"
    follow_ups = frozenset({"edit", "reply", "delete"})

    def __init__(
        self,
        name: str,
        api_url: str,
        *,
        access_token: str,
        visibility: str = "public",
        content_warning: Sequence[str] = (),
        content_warning_text: str = DEFAULT_CONTENT_WARNING,
        max_chars: int = 500,
        url_length: int = 23,
        timeout_s: float = 15.0,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if visibility not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {VISIBILITIES}")
        super().__init__(name, timeout_s=timeout_s, session=session, clock=clock)
        self.api_url = api_url.rstrip("/")
        self._token = access_token
        self.visibility = visibility
        self.content_warning = frozenset(content_warning)
        self.content_warning_text = content_warning_text
        self.max_chars = max_chars
        self.url_length = url_length
        self._quota = QuotaWindow(clock)
        self._posted = PostedParts()

    def __repr__(self) -> str:  # the token never appears in a repr or a log
        return f"MastodonChannel(name={self._name!r}, api_url={self.api_url!r})"

    def follow_up_for(self, msg_type: str) -> str | None:
        return {"Update": "edit", "Cancel": "reply"}.get(msg_type)

    # ---- requests

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        follow_up: bool = False,
    ) -> HttpAnswer:
        self._quota.check(f"{self.api_url} ({self._name})")
        url = f"{self.api_url}{path}"
        headers = self._headers()
        if key is not None:
            headers["Idempotency-Key"] = key
        answer = await self._http.request(method, url, json_body=body, headers=headers)
        error = classify(answer, url=url, now=self.clock(), follow_up=follow_up)
        if error is not None:
            raise error
        self._note_quota(answer)
        return answer

    def _note_quota(self, answer: HttpAnswer) -> None:
        self._quota.note(
            answer.headers.get("X-RateLimit-Remaining"),
            reset_wait_s(answer.headers, now=self.clock()),
            event="mastodon.quota_spent",
            channel=self._name,
        )

    def status_body(self, text: str, message: OutboundMessage) -> dict[str, Any]:
        """The JSON parameters of ``POST /api/v1/statuses`` (and ``PUT``) for one part."""
        body: dict[str, Any] = {"status": text, "visibility": self.visibility}
        language = primary_language(message.language)
        if language:
            body["language"] = language
        if message.severity in self.content_warning:
            warning = self.content_warning_text
            if mastodon_length(text, url_length=self.url_length) + len(warning) <= self.max_chars:
                body["spoiler_text"] = warning
            else:
                log.info("mastodon.content_warning_dropped", channel=self._name)
        return body

    async def _thread(
        self, message: OutboundMessage, target: str, *, reply_to: str | None
    ) -> list[str]:
        if not message.parts:
            raise nothing_to_post(self._name)
        base = thread_key(message, target, reply_to)

        async def post(index: int, earlier: Sequence[str]) -> str:
            body = self.status_body(message.parts[index], message)
            parent = earlier[-1] if earlier else reply_to
            if parent is not None:
                body["in_reply_to_id"] = parent
            answer = await self._call(
                "POST",
                "/api/v1/statuses",
                body,
                key=f"{base}:{index}",
                follow_up=reply_to is not None,
            )
            return _status_id(answer, self.api_url)

        return await self._posted.thread(base, len(message.parts), post)

    # ---- the Channel protocol

    async def edit(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        if len(message.parts) != 1:
            raise Permanent(
                f"{self._name}: an update of {len(message.parts)} parts cannot replace one status"
            )
        body = self.status_body(message.parts[0], message)
        body.pop("visibility")  # not editable: the status keeps the one it was posted with
        body.setdefault("spoiler_text", "")  # an edit without it would keep the old warning
        answer = await self._call(
            "PUT", f"/api/v1/statuses/{provider_message_id}", body, follow_up=True
        )
        return Receipt(provider_message_id=_status_id(answer, self.api_url))

    async def delete(self, provider_message_id: str, target: str) -> None:
        await self._call("DELETE", f"/api/v1/statuses/{provider_message_id}", follow_up=True)


def _status_id(answer: HttpAnswer, url: str) -> str:
    value = answer.json_object().get("id")
    if not isinstance(value, str) or not value:
        # Accepted, but we cannot name it: the post exists, so a retry would duplicate it.
        raise Permanent(f"{url} accepted the status but its answer carries no status id")
    return value


def from_config(channel: ChannelConfig, context: ChannelContext) -> MastodonChannel:
    """The account of ``channels/NAME.toml``: ``options.api_url`` (the instance), the token
    from the environment variable named by ``secrets.access_token``, and the options above."""
    read = OptionReader(channel)
    api_url = read.url("api_url", "https://mastodon.social")
    visibility = read.text("visibility", "public", VISIBILITIES)
    warning = channel.options.get("content_warning", [])
    if not isinstance(warning, list) or not all(isinstance(s, str) for s in warning):
        read.problem("options.content_warning", "must be a list of CAP severities")
        warning = []
    warning_text = read.text("content_warning_text", DEFAULT_CONTENT_WARNING)
    max_chars = read.number("max_chars", 500)
    url_length = read.number("url_length", 23)
    timeout = read.number("timeout_s", 15.0)
    token = read.secret("access_token")
    read.done()
    return MastodonChannel(
        channel.name,
        api_url,
        access_token=token,
        visibility=visibility,
        content_warning=warning,
        content_warning_text=warning_text,
        max_chars=int(max_chars),
        url_length=int(url_length),
        timeout_s=timeout,
    )


__all__ = ["MastodonChannel", "classify", "from_config", "reset_wait_s"]
