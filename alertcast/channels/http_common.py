"""What the social-network adapters share: one HTTP exchange, a spent quota, a half-sent thread.

Mastodon, X, Facebook and Bluesky are all spoken over plain HTTPS with
JSON, so each adapter is a thin layer over :class:`HttpClient`. What is
shared here is only what must behave the same everywhere:

* **Whether a request may have arrived.** An exception raised by the HTTP
  client is classified by :func:`alertcast.channels.webhook.classify`, the
  same rule as for webhooks: once any byte of the request left (aiohttp's
  request tracing, :func:`~alertcast.channels.webhook.send_tracking`), a
  timeout or a reset is :class:`~alertcast.errors.SentButUnknown`, because a
  post that may be on the timeline must not be posted again blindly.
* **A spent quota** (:class:`QuotaWindow`). Providers say in the headers of
  a *successful* answer that no request is left until some time; the next
  send then raises :class:`~alertcast.errors.RateLimited` without asking,
  so the worker's limiter pauses the channel instead of burning a 429.
* **A thread cut in the middle** (:class:`PostedParts`). A long alert is a
  thread of posts; when part 2 fails after part 1 was posted, the retry must
  continue the thread, not post part 1 a second time. The ids already
  posted are remembered per message (in memory: a restart forgets them, and
  Mastodon's ``Idempotency-Key`` covers that case on its side).

Answers are returned whatever their status; each adapter maps a provider's
failures to error classes in its own single ``classify`` function, ending in
:func:`by_status` for whatever its provider has no rule of its own. The frame
of a channel (:class:`HttpChannel`) and the ``send``/``reply`` of one that
posts threads (:class:`ThreadedPosts`) are here too, so that each adapter
holds only what its provider does differently.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog
from multidict import CIMultiDict

from alertcast.channels.webhook import (  # the trace callbacks mark this very class
    _Attempt,
    _read_limited,
    _tracks_sends,
    idempotency_key,
    send_tracking,
)
from alertcast.channels.webhook import (
    classify as classify_exchange,
)
from alertcast.errors import (
    ChannelError,
    ConfigError,
    ConfigProblem,
    Permanent,
    RateLimited,
    Transient,
)
from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.config import ChannelConfig

log = structlog.get_logger(__name__)

__all__ = [
    "HttpAnswer",
    "HttpChannel",
    "HttpClient",
    "OptionReader",
    "PostedParts",
    "QuotaWindow",
    "ThreadedPosts",
    "by_status",
    "epoch_wait_s",
    "nothing_to_post",
    "primary_language",
    "thread_key",
]


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A provider's answer: status, headers (case-insensitive) and (the start of) the body."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""

    def json(self) -> Any:
        """The body as JSON, or None when it is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; ``{}`` for anything else."""
        data = self.json()
        return data if isinstance(data, dict) else {}


class HttpClient:
    """One aiohttp session per channel, opened on first use; every exchange is traced.

    ``session`` may be passed in (tests, a shared pool); it stays the
    caller's, and unless it carries :func:`send_tracking` every failure
    after the connection opened is taken as "may have arrived".
    """

    def __init__(
        self,
        *,
        timeout_s: float,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
        user_agent: str = "alertcast",
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._session = session
        self._owns_session = session is None
        self._tracked = session is None or _tracks_sends(session)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.clock = clock
        self.user_agent = user_agent

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(trace_configs=[send_tracking()])
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        shown_url: str | None = None,
    ) -> HttpAnswer:
        """Send one request and return the answer, whatever its status.

        An exception instead of an answer is raised as the error class of
        :func:`alertcast.channels.webhook.classify` (``Transient`` before the
        request left, ``SentButUnknown`` after). ``shown_url`` is the URL put
        in error messages when ``url`` must not be shown.
        """
        sent_headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        sent_headers.update(headers or {})
        data: bytes | None = None
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
            sent_headers["Content-Type"] = "application/json; charset=utf-8"
        attempt = _Attempt()
        if not self._tracked:
            attempt.left = True
        try:
            async with self._client().request(
                method,
                url,
                data=data,
                headers=sent_headers,
                timeout=self.timeout,
                allow_redirects=False,
                trace_request_ctx=attempt,
            ) as response:
                status = response.status
                answer_headers: Mapping[str, str] = CIMultiDict(response.headers)
                try:
                    body = await _read_limited(response)
                except (TimeoutError, aiohttp.ClientError):
                    body = b""  # the status line already says what the provider decided
        except Exception as exc:  # cancellation (a BaseException) passes through untouched
            raise classify_exchange(
                exc, url=shown_url or url, request_left=attempt.left, now=self.clock()
            ) from exc
        return HttpAnswer(status, answer_headers, body)

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()


class QuotaWindow:
    """Remembers "no request left until T" from a successful answer's headers.

    :meth:`check` raises :class:`RateLimited` until then, so the next send
    waits for the reset without spending a request the provider would refuse.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.until = 0.0

    def spent_until(self, until: float) -> None:
        self.until = max(self.until, until)

    def note(
        self, remaining: str | None, reset_in_s: float | None, *, event: str, channel: str
    ) -> None:
        """After a successful answer: a ``remaining`` of "0" spends the quota for ``reset_in_s``."""
        if remaining is not None and remaining.strip() == "0" and reset_in_s:
            self.spent_until(self.clock() + reset_in_s)
            log.info(event, channel=channel, reset_in_s=round(reset_in_s, 1))

    def check(self, what: str) -> None:
        wait = self.until - self.clock()
        if wait > 0:
            raise RateLimited(f"{what}: no request left before the quota resets", wait)


class PostedParts:
    """Post ids already published for a message's thread, kept until the thread is complete.

    Bounded: the oldest unfinished threads are forgotten first.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._posted: OrderedDict[str, list[str]] = OrderedDict()

    def get(self, key: str) -> list[str]:
        return list(self._posted.get(key, ()))

    def add(self, key: str, post_id: str) -> None:
        self._posted.setdefault(key, []).append(post_id)
        self._posted.move_to_end(key)
        while len(self._posted) > self.capacity:
            self._posted.popitem(last=False)

    def done(self, key: str) -> None:
        self._posted.pop(key, None)

    async def thread(
        self,
        key: str,
        parts: int,
        post: Callable[[int, Sequence[str]], Awaitable[str]],
    ) -> list[str]:
        """Post parts ``len(posted)`` to ``parts - 1`` in order; the ids of the whole thread.

        ``post(index, earlier)`` publishes part ``index`` (``earlier``: the
        ids of the parts before it) and returns its id, which is remembered
        at once so that a failure of a later part resumes after it.
        """
        ids = self.get(key)
        for index in range(len(ids), parts):
            post_id = await post(index, ids)
            self.add(key, post_id)
            ids.append(post_id)
        self.done(key)
        return ids


class HttpChannel:
    """The frame of a channel spoken over :class:`HttpClient`: its name, its client, its clock."""

    def __init__(
        self,
        name: str,
        *,
        timeout_s: float,
        session: aiohttp.ClientSession | None,
        clock: Callable[[], float],
    ) -> None:
        self._name = name
        self.clock = clock
        self._http = HttpClient(timeout_s=timeout_s, session=session, clock=clock)

    @property
    def name(self) -> str:
        return self._name

    async def aclose(self) -> None:
        await self._http.aclose()


class ThreadedPosts(HttpChannel):
    """``send`` and ``reply`` of a channel that posts a message as a thread of posts.

    The receipt names the thread's first post: follow-ups act on it. A reply
    is a thread of its own under the earlier post.
    """

    async def _thread(
        self, message: OutboundMessage, target: str, *, reply_to: str | None
    ) -> list[str]:
        raise NotImplementedError

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        ids = await self._thread(message, target, reply_to=None)
        return Receipt(provider_message_id=ids[0])

    async def reply(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        ids = await self._thread(message, target, reply_to=provider_message_id)
        return Receipt(provider_message_id=ids[0])


def thread_key(message: OutboundMessage, target: str, reply_to: str | None) -> str:
    """The key a message's thread is remembered under: one per message, target and reply."""
    key = idempotency_key(message, target)
    return f"{key}:reply:{reply_to}" if reply_to else key


def nothing_to_post(channel: str) -> Permanent:
    return Permanent(f"{channel}: nothing to post (a message without text)")


def epoch_wait_s(headers: Mapping[str, str], name: str, *, now: float) -> float | None:
    """Seconds until the unix time in header ``name``; None when absent or unreadable."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return max(0.0, float(str(value).strip()) - now)
    except ValueError:
        return None


def by_status(status: int, text: str) -> ChannelError:
    """A refusal no provider-specific rule matched: 408 and 5xx may pass later, others not."""
    if status == 408 or 500 <= status < 600:
        return Transient(text)
    return Permanent(text)


def primary_language(tag: str | None) -> str | None:
    """``es`` of ``es-MX``: the ISO 639-1 code Mastodon and Bluesky clients filter on."""
    if not tag:
        return None
    primary = tag.replace("_", "-").split("-")[0].strip().lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else None


# --------------------------------------------------------------------------- configuration


class OptionReader:
    """Reads a channel's ``[options]`` and ``[secrets]``, collecting every problem at once."""

    def __init__(self, channel: ChannelConfig) -> None:
        self.channel = channel
        self.file = str(channel.file)
        self.problems: list[ConfigProblem] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, key, message))

    def url(self, key: str, default: str) -> str:
        value = self.channel.options.get(key, default)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            self.problem(f"options.{key}", "must be an http(s) URL")
            return default
        return value.rstrip("/")

    def number(self, key: str, default: float) -> float:
        value = self.channel.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.problem(f"options.{key}", "must be a number > 0")
            return default
        return float(value)

    def text(self, key: str, default: str, choices: tuple[str, ...] = ()) -> str:
        value = self.channel.options.get(key, default)
        if not isinstance(value, str) or not value.strip():
            self.problem(f"options.{key}", "must be a non-empty string")
            return default
        if choices and value not in choices:
            self.problem(f"options.{key}", f"must be one of {', '.join(choices)}, not {value!r}")
            return default
        return value.strip()

    def secret(self, role: str) -> str:
        """The secret of ``role``; a problem (never its value) when it is not configured."""
        env_name = self.channel.secrets.get(role)
        if env_name is None:
            self.problem(f"secrets.{role}", "is required (the name of an environment variable)")
            return ""
        value = self.channel.secret(role)
        if not value:
            self.problem(f"secrets.{role}", f"environment variable {env_name} is not set")
            return ""
        return value

    def done(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)
