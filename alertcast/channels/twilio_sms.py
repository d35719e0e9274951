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

from alertcast.channels.twilio_common import (
    TwilioChannel,
    check_e164,
    raise_problems,
    read_settings,
)
from alertcast.errors import ConfigProblem, Permanent
from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig


class TwilioSmsChannel(TwilioChannel):
    """Sends SMS from one Twilio sender (a number or a Messaging Service)."""

    kind = "sms"

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
        requests = [self.params(text, target, first=index == 0) for index, text in enumerate(parts)]
        sids = await self._sender.create_parts(target, requests, event="sms.partial_send")
        return Receipt(provider_message_id=sids[0])


def from_config(channel: ChannelConfig, context: ChannelContext) -> TwilioSmsChannel:
    """The SMS channel of ``channels/NAME.toml``; ConfigError lists every problem at once."""
    problems: list[ConfigProblem] = []
    settings = read_settings(channel, context, problems)
    raise_problems(problems)
    assert settings is not None
    return TwilioSmsChannel(channel.name, settings)
