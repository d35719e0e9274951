"""The ``bluesky`` channel: post alerts from one Bluesky account through its PDS (XRPC).

The account logs in with ``com.atproto.server.createSession`` (its handle
or DID and an *app password*: secret roles ``identifier`` and
``app_password``). The session's ``accessJwt`` is kept in memory and used
until the PDS answers ``ExpiredToken``; then ``refreshSession`` (with the
``refreshJwt``) gets a new one, or, when that is expired too, a new login,
and the request is sent once more. Logging in again for every post would
spend the PDS's strict login quota.

Posts are ``app.bsky.feed.post`` records (``com.atproto.repo.createRecord``)
with ``text``, ``createdAt``, ``langs`` and link *facets*: Bluesky shows a
URL as a link only when a facet gives its UTF-8 byte range, so
:func:`link_facets` computes them from the text. A long alert is a thread:
each part replies to the one before, with the ``root`` and ``parent``
references (``uri`` and ``cid``) the reply record requires.

**Receipt ids** are ``"<at:// uri>|<cid>"``: the uri names the post (and
its record key, for deleting it), the cid is needed to reply to it. A post
that is itself a reply appends its thread root's: ``"uri|cid|root_uri|root_cid"``,
so a later reply still joins the right thread.

Follow-ups: Bluesky posts cannot be edited; an Update is a *reply* under
the earlier post, a Cancel is *delete* (the dispatcher posts the notice
first, then ``com.atproto.repo.deleteRecord`` removes the warning).
Failures are mapped in :func:`classify`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, overload

import aiohttp
import structlog

from alertcast.channel_profiles import find_urls
from alertcast.channels.http_common import (
    HttpAnswer,
    HttpChannel,
    OptionReader,
    PostedParts,
    by_status,
    epoch_wait_s,
    nothing_to_post,
    thread_key,
)
from alertcast.channels.webhook import classify as classify_exchange
from alertcast.channels.webhook import excerpt
from alertcast.errors import ChannelError, Permanent, RateLimited, Transient
from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

log = structlog.get_logger(__name__)

POST_COLLECTION = "app.bsky.feed.post"
DEFAULT_RATE_LIMIT_WAIT_S = 60.0
TOKEN_EXPIRED = frozenset({"ExpiredToken"})
"""The error after which a refreshed session may succeed; anything else is final."""


# --------------------------------------------------------------------------- records


def link_facets(text: str) -> list[dict[str, Any]]:
    """``app.bsky.richtext.facet`` links for the URLs in ``text``, with UTF-8 byte offsets.

    A URL shown without its scheme (``example.org/a/1``, as Bluesky apps
    shorten them) points to ``https://`` it. A URL cut short for display
    (ending in "…") is left as text: where it pointed is no longer known.
    """
    facets: list[dict[str, Any]] = []
    for url in find_urls(text):
        if url.url.endswith("…") or text[url.end : url.end + 1] == "…":
            continue
        start = len(text[: url.start].encode("utf-8"))
        end = start + len(url.url.encode("utf-8"))
        uri = url.url if url.has_scheme else f"https://{url.url}"
        facets.append(
            {
                "index": {"byteStart": start, "byteEnd": end},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}],
            }
        )
    return facets


@dataclass(frozen=True, slots=True)
class PostRef:
    """A post as a reply needs it (``com.atproto.repo.strongRef``), and its thread's root."""

    uri: str
    cid: str
    root_uri: str | None = None
    root_cid: str | None = None

    @property
    def root(self) -> dict[str, str]:
        if self.root_uri and self.root_cid:
            return {"uri": self.root_uri, "cid": self.root_cid}
        return {"uri": self.uri, "cid": self.cid}

    def encode(self) -> str:
        if self.root_uri and self.root_cid:
            return f"{self.uri}|{self.cid}|{self.root_uri}|{self.root_cid}"
        return f"{self.uri}|{self.cid}"

    @classmethod
    def decode(cls, value: str) -> PostRef:
        pieces = value.split("|")
        if len(pieces) not in (2, 4) or not all(pieces) or not pieces[0].startswith("at://"):
            raise Permanent(f"{value!r} is not a Bluesky post reference (uri|cid)")
        if len(pieces) == 4:
            return cls(pieces[0], pieces[1], pieces[2], pieces[3])
        return cls(pieces[0], pieces[1])

    @property
    def rkey(self) -> str:
        """The record key: the last segment of ``at://did/collection/rkey``."""
        parts = self.uri.removeprefix("at://").split("/")
        if len(parts) != 3 or parts[1] != POST_COLLECTION or not parts[2]:
            raise Permanent(f"{self.uri} is not the uri of a Bluesky post")
        return parts[2]


def _created_at(now: float) -> str:
    return (
        datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


# --------------------------------------------------------------------------- failures


def xrpc_error(answer: HttpAnswer) -> tuple[str, str]:
    """XRPC's ``{"error": name, "message": text}``; empty strings when absent."""
    data = answer.json_object()
    name = data.get("error")
    message = data.get("message")
    return (
        name if isinstance(name, str) else "",
        message if isinstance(message, str) else excerpt(answer.body),
    )


def _reset_wait(headers: Mapping[str, str], *, now: float) -> float:
    wait = epoch_wait_s(headers, "ratelimit-reset", now=now)
    return DEFAULT_RATE_LIMIT_WAIT_S if wait is None else wait


@overload
def classify(answer: HttpAnswer, *, url: str, now: float) -> ChannelError | None: ...


@overload
def classify(
    answer: Exception, *, url: str, now: float, request_left: bool = True
) -> ChannelError: ...


def classify(
    answer: HttpAnswer | Exception, *, url: str, now: float, request_left: bool = True
) -> ChannelError | None:
    """The one place Bluesky failures become error classes; None means accepted.

    ``ExpiredToken`` reaching here means a refreshed session was refused too.
    ``AuthenticationRequired`` (wrong identifier or app password, a revoked
    app password) and ``AccountTakedown`` need the operator.
    """
    if isinstance(answer, Exception):
        return classify_exchange(answer, url=url, request_left=request_left, now=now)
    status = answer.status
    if 200 <= status < 300:
        return None
    name, message = xrpc_error(answer)
    text = f"{url} answered {status}: {name + ': ' if name else ''}{message}"
    if status == 429 or name == "RateLimitExceeded":
        wait = _reset_wait(answer.headers, now=now)
        return RateLimited(f"{text} (retry after {wait:g} s)", wait)
    if name in ("AuthenticationRequired", "InvalidToken", "ExpiredToken", "AccountTakedown"):
        return Permanent(f"{text}; check the identifier and app password")
    if status in (401, 403):
        return Permanent(f"{text}; check the identifier and app password")
    return by_status(status, text)


# --------------------------------------------------------------------------- channel


@dataclass(frozen=True, slots=True)
class _Session:
    did: str
    access: str
    refresh: str


class BlueskyChannel(HttpChannel):
    """Posts from one Bluesky account; one instance per account."""

    kind = "bluesky"
    follow_ups = frozenset({"reply", "delete"})

    def __init__(
        self,
        name: str,
        *,
        identifier: str,
        app_password: str,
        api_url: str = "https://bsky.social",
        timeout_s: float = 15.0,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, timeout_s=timeout_s, session=session, clock=clock)
        self.identifier = identifier
        self._password = app_password
        self.api_url = api_url.rstrip("/")
        self._session: _Session | None = None
        self._login = asyncio.Lock()
        self._posted = PostedParts()

    def __repr__(self) -> str:  # the password and tokens never appear in a repr or a log
        return f"BlueskyChannel(name={self._name!r}, identifier={self.identifier!r})"

    def follow_up_for(self, msg_type: str) -> str | None:
        return {"Update": "reply", "Cancel": "delete"}.get(msg_type)

    # ---- XRPC

    def _url(self, nsid: str) -> str:
        return f"{self.api_url}/xrpc/{nsid}"

    async def _xrpc(self, nsid: str, body: dict[str, Any] | None, token: str | None) -> HttpAnswer:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self._http.request("POST", self._url(nsid), json_body=body, headers=headers)

    def _raise_for(self, answer: HttpAnswer, nsid: str) -> None:
        error = classify(answer, url=self._url(nsid), now=self.clock())
        if error is not None:
            raise error

    def _take(self, answer: HttpAnswer, nsid: str) -> _Session:
        data = answer.json_object()
        did, access, refresh = data.get("did"), data.get("accessJwt"), data.get("refreshJwt")
        if not all(isinstance(v, str) and v for v in (did, access, refresh)):
            raise Transient(f"{self._url(nsid)}: a session answer without did or tokens")
        self._session = _Session(str(did), str(access), str(refresh))
        return self._session

    async def _create_session(self) -> _Session:
        nsid = "com.atproto.server.createSession"
        answer = await self._xrpc(
            nsid, {"identifier": self.identifier, "password": self._password}, None
        )
        self._raise_for(answer, nsid)
        log.info("bluesky.session_created", channel=self._name)
        return self._take(answer, nsid)

    async def _current(self) -> _Session:
        async with self._login:
            return self._session or await self._create_session()

    async def _renew(self, stale: _Session) -> _Session:
        """A fresh session after ``stale`` expired: refreshed, or else logged in again."""
        async with self._login:
            if self._session is not None and self._session.access != stale.access:
                return self._session  # another request renewed it meanwhile
            nsid = "com.atproto.server.refreshSession"
            answer = await self._xrpc(nsid, None, stale.refresh)
            name, _ = xrpc_error(answer)
            if answer.status >= 400 and name in ("ExpiredToken", "InvalidToken"):
                self._session = None
                return await self._create_session()
            self._raise_for(answer, nsid)
            log.info("bluesky.session_refreshed", channel=self._name)
            return self._take(answer, nsid)

    async def _call(self, nsid: str, body: dict[str, Any]) -> HttpAnswer:
        """An authenticated XRPC procedure; after ``ExpiredToken``, renewed and sent once more.

        ``ExpiredToken`` means the PDS refused the request before acting on
        it, so sending it again cannot post twice.
        """
        session = await self._current()
        answer = await self._xrpc(nsid, {**body, "repo": session.did}, session.access)
        if answer.status in (400, 401) and xrpc_error(answer)[0] in TOKEN_EXPIRED:
            session = await self._renew(session)
            answer = await self._xrpc(nsid, {**body, "repo": session.did}, session.access)
        self._raise_for(answer, nsid)
        return answer

    # ---- posting

    def record(
        self,
        text: str,
        message: OutboundMessage,
        *,
        reply: tuple[PostRef, PostRef] | None = None,
        facets: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The ``app.bsky.feed.post`` record of one part; ``reply`` is (root, parent)."""
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": text,
            "createdAt": _created_at(self.clock()),
        }
        if message.language:
            record["langs"] = [message.language]
        found = list(facets) if facets is not None else link_facets(text)
        if found:
            record["facets"] = found
        if reply is not None:
            root, parent = reply
            record["reply"] = {"root": root.root, "parent": {"uri": parent.uri, "cid": parent.cid}}
        return record

    @staticmethod
    def _given_facets(message: OutboundMessage, index: int) -> list[dict[str, Any]] | None:
        """Facets the renderer stored with the message (``extra["facets"]``, per part)."""
        given = message.extra.get("facets")
        if isinstance(given, list) and index < len(given) and isinstance(given[index], list):
            return [f for f in given[index] if isinstance(f, dict)]
        return None

    async def _thread(
        self, message: OutboundMessage, target: str, *, reply_to: PostRef | None
    ) -> list[PostRef]:
        if not message.parts:
            raise nothing_to_post(self._name)
        made: dict[str, PostRef] = {}  # posted by this call: not decoded back from their text

        def ref_of(value: str) -> PostRef:
            return made.get(value) or PostRef.decode(value)

        async def post(index: int, earlier: Sequence[str]) -> str:
            refs = [ref_of(value) for value in earlier]
            parent = refs[-1] if refs else reply_to
            root = reply_to if reply_to is not None else (refs[0] if refs else None)
            record = self.record(
                message.parts[index],
                message,
                reply=(root, parent) if root is not None and parent is not None else None,
                facets=self._given_facets(message, index),
            )
            answer = await self._call(
                "com.atproto.repo.createRecord", {"collection": POST_COLLECTION, "record": record}
            )
            data = answer.json_object()
            uri, cid = data.get("uri"), data.get("cid")
            if not (isinstance(uri, str) and uri and isinstance(cid, str) and cid):
                raise Permanent(f"{self._name}: the PDS created the post but named no uri or cid")
            thread_root = root.root if root is not None else None
            ref = PostRef(
                uri,
                cid,
                thread_root["uri"] if thread_root else None,
                thread_root["cid"] if thread_root else None,
            )
            made[ref.encode()] = ref
            return ref.encode()

        key = thread_key(message, target, reply_to.uri if reply_to else None)
        posted = await self._posted.thread(key, len(message.parts), post)
        return [ref_of(value) for value in posted]

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        refs = await self._thread(message, target, reply_to=None)
        return Receipt(provider_message_id=refs[0].encode())

    async def reply(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        earlier = PostRef.decode(provider_message_id)
        refs = await self._thread(message, target, reply_to=earlier)
        return Receipt(provider_message_id=refs[0].encode())

    async def edit(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        raise Permanent(f"{self._name}: Bluesky posts cannot be edited")

    async def delete(self, provider_message_id: str, target: str) -> None:
        ref = PostRef.decode(provider_message_id)
        await self._call(
            "com.atproto.repo.deleteRecord", {"collection": POST_COLLECTION, "rkey": ref.rkey}
        )


def from_config(channel: ChannelConfig, context: ChannelContext) -> BlueskyChannel:
    """The account of ``channels/NAME.toml``: ``options.api_url`` (its PDS) and the
    identifier and app password from the variables named in ``[secrets]``."""
    read = OptionReader(channel)
    api_url = read.url("api_url", "https://bsky.social")
    timeout = read.number("timeout_s", 15.0)
    identifier = read.secret("identifier")
    password = read.secret("app_password")
    read.done()
    return BlueskyChannel(
        channel.name,
        identifier=identifier,
        app_password=password,
        api_url=api_url,
        timeout_s=timeout,
    )


__all__ = ["BlueskyChannel", "PostRef", "classify", "from_config", "link_facets"]
