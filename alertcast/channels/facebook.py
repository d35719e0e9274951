"""The ``facebook`` channel: publish alerts on a Facebook Page through the Graph API.

``POST /{version}/{page-id}/feed`` with the message (and a ``link`` to the
alert's public page when this service has a public URL), authorised by a
Page access token (secret role ``page_token``, sent as ``Authorization:
Bearer`` so it never appears in a URL, a log line or an error message).
``options.page_id`` names the Page, ``options.api_version`` the Graph
version (default ``v21.0``), ``options.api_url`` the host.

* **One post per alert.** A Page post holds 63,206 characters, so the
  renderer makes one part; should there be more, they are joined with a
  blank line into the one post rather than spread over several.
* **Follow-ups**: an Update *edits* the post (``POST /{post-id}`` with the
  new message: no second notification for a correction). A Cancel is
  *delete*: the dispatcher posts the cancellation first and then deletes
  the warning, so a shared or bookmarked copy no longer shows a warning
  that was called off.
* **Errors** are Graph's ``{"error": {"message", "type", "code",
  "error_subcode", "fbtrace_id"}}``, mapped by code in :func:`classify`:
  190 (token expired or revoked) is permanent and logged as
  ``facebook.token_invalid`` for the operator, because every later send
  fails the same way until a new token is configured; the throttling codes
  (4, 17, 32, 613, 80001) wait ``estimated_time_to_regain_access`` minutes
  from the usage headers, else a minute; 1 and 2 (and ``is_transient``)
  are worth retrying; everything else (100 invalid parameter, 368 blocked
  as abusive, 200-299 permissions, 506 duplicate) is not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, overload

import aiohttp
import structlog

from alertcast.channels.http_common import HttpAnswer, HttpChannel, OptionReader, by_status
from alertcast.channels.webhook import classify as classify_exchange
from alertcast.channels.webhook import excerpt
from alertcast.errors import ChannelError, Permanent, RateLimited, Transient
from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

log = structlog.get_logger(__name__)

DEFAULT_API_VERSION = "v21.0"
DEFAULT_RATE_LIMIT_WAIT_S = 60.0
"""Wait after a throttling error whose usage headers name no time to regain access."""

TOKEN_INVALID = 190
THROTTLED = frozenset({4, 17, 32, 613, 80001})
"""App (4), user (17), Page (32), custom (613) and Pages business-use-case (80001) limits."""
TRANSIENT = frozenset({1, 2})
USAGE_HEADERS = (
    "X-Business-Use-Case-Usage",
    "X-Page-Usage",
    "X-App-Usage",
    "X-Ad-Account-Usage",
)


def regain_access_s(headers: Mapping[str, str]) -> float | None:
    """The longest ``estimated_time_to_regain_access`` (minutes) in the usage headers, in s.

    ``X-Business-Use-Case-Usage`` is ``{id: [{"type", "call_count", ...,
    "estimated_time_to_regain_access"}]}``; the other usage headers are flat
    objects that may carry the same field.
    """
    found: list[float] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "estimated_time_to_regain_access":
                    if isinstance(item, int | float) and not isinstance(item, bool):
                        found.append(float(item))
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for name in USAGE_HEADERS:
        raw = headers.get(name)
        if raw:
            try:
                walk(json.loads(raw))
            except ValueError:
                continue
    minutes = max(found, default=0.0)
    return minutes * 60.0 if minutes > 0 else None


@overload
def classify(
    answer: HttpAnswer, *, url: str, now: float, channel: str = ""
) -> ChannelError | None: ...


@overload
def classify(
    answer: Exception, *, url: str, now: float, channel: str = "", request_left: bool = True
) -> ChannelError: ...


def classify(
    answer: HttpAnswer | Exception,
    *,
    url: str,
    now: float,
    channel: str = "",
    request_left: bool = True,
) -> ChannelError | None:
    """The one place Graph API failures become error classes; None means accepted."""
    if isinstance(answer, Exception):
        return classify_exchange(answer, url=url, request_left=request_left, now=now)
    status = answer.status
    if 200 <= status < 300:
        return None
    error = answer.json_object().get("error")
    if not isinstance(error, dict):
        text = f"{url} answered {status}: {excerpt(answer.body)}"
        if status == 429:
            wait = regain_access_s(answer.headers) or DEFAULT_RATE_LIMIT_WAIT_S
            return RateLimited(text, wait)
        return by_status(status, text)
    code = error.get("code")
    subcode = error.get("error_subcode")
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    text = f"{url} answered {status}: ({code}) {message}".rstrip()
    if subcode is not None:
        text += f" [subcode {subcode}]"
    if code == TOKEN_INVALID:
        log.warning(
            "facebook.token_invalid",
            channel=channel,
            subcode=subcode,
            fbtrace_id=error.get("fbtrace_id"),
            hint="generate a new Page access token and set the page_token variable",
        )
        return Permanent(f"{text}; the Page access token is expired or revoked")
    if code in THROTTLED or status == 429:
        wait = regain_access_s(answer.headers) or DEFAULT_RATE_LIMIT_WAIT_S
        return RateLimited(f"{text} (retry after {wait:g} s)", wait)
    if code in TRANSIENT or error.get("is_transient") is True:
        return Transient(text)
    if code is None:
        return by_status(status, text)
    return Permanent(text)


class FacebookChannel(HttpChannel):
    """Publishes on one Facebook Page; one instance per Page."""

    kind = "facebook"
    follow_ups = frozenset({"edit", "delete"})

    def __init__(
        self,
        name: str,
        *,
        page_id: str,
        page_token: str,
        api_url: str = "https://graph.facebook.com",
        api_version: str = DEFAULT_API_VERSION,
        site_url: str | None = None,
        timeout_s: float = 15.0,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, timeout_s=timeout_s, session=session, clock=clock)
        self.page_id = page_id
        self._token = page_token
        self.api_url = api_url.rstrip("/")
        self.api_version = api_version
        self.site_url = site_url.rstrip("/") if site_url else None

    def __repr__(self) -> str:  # the token never appears in a repr or a log
        return f"FacebookChannel(name={self._name!r}, page_id={self.page_id!r})"

    def follow_up_for(self, msg_type: str) -> str | None:
        return {"Update": "edit", "Cancel": "delete"}.get(msg_type)

    def link_for(self, message: OutboundMessage) -> str | None:
        """The alert's public page, when this service has a public URL and the alert an id."""
        alert_id = message.extra.get("alert_id")
        if self.site_url is None or alert_id is None:
            return None
        return f"{self.site_url}/alerts/{alert_id}"

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> HttpAnswer:
        url = f"{self.api_url}/{self.api_version}/{path}"
        headers = {"Authorization": f"Bearer {self._token}"}
        answer = await self._http.request(method, url, json_body=body, headers=headers)
        error = classify(answer, url=url, now=self.clock(), channel=self._name)
        if error is not None:
            raise error
        return answer

    @staticmethod
    def _text(message: OutboundMessage) -> str:
        text = "\n\n".join(part for part in message.parts if part)
        if not text:
            raise Permanent("nothing to post (a message without text)")
        return text

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        body: dict[str, Any] = {"message": self._text(message)}
        link = self.link_for(message)
        if link:
            body["link"] = link
        answer = await self._call("POST", f"{self.page_id}/feed", body)
        post_id = answer.json_object().get("id")
        if not isinstance(post_id, str) or not post_id:
            raise Permanent(f"{self._name}: the Page accepted the post but named no id")
        return Receipt(provider_message_id=post_id)

    async def edit(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        answer = await self._call("POST", provider_message_id, {"message": self._text(message)})
        if answer.json_object().get("success") is not True:
            raise Permanent(
                f"{self._name}: Graph did not confirm the edit of {provider_message_id}"
            )
        return Receipt(provider_message_id=provider_message_id)

    async def reply(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        raise Permanent(f"{self._name}: replies to Page posts are not used")

    async def delete(self, provider_message_id: str, target: str) -> None:
        answer = await self._call("DELETE", provider_message_id, None)
        if answer.json_object().get("success") is not True:
            raise Permanent(f"{self._name}: Graph did not confirm the deletion")


def from_config(channel: ChannelConfig, context: ChannelContext) -> FacebookChannel:
    """The Page of ``channels/NAME.toml``: ``options.page_id``, ``options.api_version``,
    ``options.api_url`` and the Page token from ``secrets.page_token``'s variable."""
    read = OptionReader(channel)
    page_id = channel.options.get("page_id")
    if isinstance(page_id, int) and not isinstance(page_id, bool):
        page_id = str(page_id)
    if not isinstance(page_id, str) or not page_id.strip().isdigit():
        read.problem("options.page_id", "must be the Page's numeric id (as a string)")
        page_id = ""
    api_url = read.url("api_url", "https://graph.facebook.com")
    version = read.text("api_version", DEFAULT_API_VERSION)
    if not (version.startswith("v") and version[1:].replace(".", "").isdigit()):
        read.problem("options.api_version", f"must look like {DEFAULT_API_VERSION}")
    link = channel.options.get("link_alert_page", True)
    if not isinstance(link, bool):
        read.problem("options.link_alert_page", "must be true or false")
        link = True
    timeout = read.number("timeout_s", 15.0)
    token = read.secret("page_token")
    read.done()
    return FacebookChannel(
        channel.name,
        page_id=page_id.strip(),
        page_token=token,
        api_url=api_url,
        api_version=version,
        site_url=context.site_url if link else None,
        timeout_s=timeout,
    )


__all__ = ["FacebookChannel", "classify", "from_config", "regain_access_s"]
