"""The ``sms`` channel: text messages through Twilio's Programmable Messaging API.

Each part of the rendered message becomes one Message resource, sent in
order. The renderer already fits an alert into ``max_segments`` segments of
one concatenated SMS (:mod:`alertcast.sms`), so there is usually one part;
Twilio joins the segments on the phone.

The receipt's provider id is the first Message SID, and only that first
message asks for status callbacks: the ledger keeps one provider id per row,
and a callback for any other SID would find no row. Its delivery stands for
the alert's, since the first part carries the headline and the instruction.

A part that fails after an earlier part was accepted leaves the recipient
with half a message; resending the whole would repeat what already arrived.
That is :class:`~alertcast.errors.SentButUnknown`, and the retry policy
decides (one more attempt for Severe and Extreme warnings).

Options (``channels/NAME.toml``): ``from`` (a Twilio number, short code or
alphanumeric sender id) or ``messaging_service_sid``; ``api_url``;
``timeout_s``; ``status_callback_url`` (default
``{site_url}/webhooks/twilio/status``). Secrets: ``account_sid``,
``auth_token``. Failures are classified by
:func:`alertcast.channels.twilio_common.classify`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from alertcast.channels.twilio_common import (
    TwilioSender,
    TwilioSettings,
    check_e164,
    raise_problems,
    read_settings,
)
from alertcast.errors import ChannelError, ConfigProblem, Permanent, SentButUnknown
from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

log = structlog.get_logger(__name__)


class TwilioSmsChannel:
    """Sends SMS from one Twilio sender (a number or a Messaging Service)."""

    kind = "sms"

    def __init__(self, name: str, settings: TwilioSettings) -> None:
        self._name = name
        self._sender = TwilioSender(name, settings)

    @property
    def name(self) -> str:
        return self._name

    @property
    def settings(self) -> TwilioSettings:
        return self._sender.settings

    def __repr__(self) -> str:
        return f"TwilioSmsChannel(name={self._name!r})"

    def params(self, text: str, target: str, *, first: bool) -> dict[str, Any]:
        """The SDK's ``create`` arguments for one part to ``target``."""
        params: dict[str, Any] = {"to": target, "body": text, **self._sender.sender_params()}
        if first and self.settings.status_callback is not None:
            params["status_callback"] = self.settings.status_callback
        return params

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        check_e164(target, channel=self._name)
        parts = [part for part in message.parts if part.strip()]
        if not parts:
            raise Permanent(f"{self._name}: the message has no text to send")
        sids: list[str] = []
        for index, text in enumerate(parts):
            try:
                sid = await self._sender.create(
                    target, **self.params(text, target, first=index == 0)
                )
            except ChannelError as exc:
                if not sids:
                    raise
                log.error(
                    "sms.partial_send",
                    channel=self._name,
                    sent_parts=len(sids),
                    parts=len(parts),
                    first_sid=sids[0],
                    error=type(exc).__name__,
                )
                raise SentButUnknown(
                    f"{self._name}: part {index + 1} of {len(parts)} failed after"
                    f" {sids[0]} was accepted: {exc}"
                ) from exc
            sids.append(sid)
        return Receipt(provider_message_id=sids[0])

    async def aclose(self) -> None:
        await self._sender.aclose()


def from_config(channel: ChannelConfig, context: ChannelContext) -> TwilioSmsChannel:
    """The SMS channel of ``channels/NAME.toml``; ConfigError lists every problem at once."""
    problems: list[ConfigProblem] = []
    settings = read_settings(channel, context, problems)
    raise_problems(problems)
    assert settings is not None
    return TwilioSmsChannel(channel.name, settings)
