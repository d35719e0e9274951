"""The ``whatsapp`` channel: WhatsApp messages through Twilio's Messaging API.

WhatsApp lets a business write free text to a person only inside the
24-hour *session* opened by that person's last message; outside it, only a
template that WhatsApp approved beforehand. So each send picks one of two
forms:

* **Session open** → the rendered parts as free text (``Body``), one Message each.
* **Otherwise** → the approved Content template: ``ContentSid`` and
  ``ContentVariables`` (JSON ``{"1": headline, "2": area, "3": instruction,
  "4": link}``) from ``message.extra["whatsapp_template"]`` (what the
  renderer produced: ``{name, language, variables}``). ``options.templates``
  maps a template name to its Content SID, or to a table of language →
  Content SID when each language was approved as its own template.

Whether the session is open is read from ``message.extra["session_open"]``
(absent: closed, the safe guess, since a template is delivered either way).
The subscribers' store is where this will come from, once it records when
each person last wrote.

When Twilio still answers 63016 (free text outside the window), the send
fails for good with an error starting ``whatsapp.outside_session``. Falling
back to SMS for that person is a routing decision, not this channel's: a
channel sends to its own provider only.

Addresses are ``whatsapp:+E164`` on both sides; ``options.from`` is the
WhatsApp sender's number (with or without the ``whatsapp:`` prefix), or use
``options.messaging_service_sid``. Receipts, callbacks, secrets and errors
are as for the SMS channel (:mod:`alertcast.channels.twilio_sms`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from alertcast.channels.twilio_common import (
    OUTSIDE_SESSION_TEXT,
    TwilioChannel,
    TwilioSettings,
    check_e164,
    raise_problems,
    read_settings,
)
from alertcast.errors import ConfigProblem, Permanent
from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

PREFIX = "whatsapp:"
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")

Templates = Mapping[str, str | Mapping[str, str]]
"""Template name → Content SID, or → {language → Content SID}."""


class TwilioWhatsAppChannel(TwilioChannel):
    """Sends WhatsApp messages from one Twilio WhatsApp sender."""

    kind = "whatsapp"

    def __init__(self, name: str, settings: TwilioSettings, templates: Templates) -> None:
        super().__init__(name, settings)
        self.templates = templates

    def content_sid(self, name: str, language: str | None) -> str | None:
        """The Content SID of template ``name`` in ``language``, its primary subtag or "default"."""
        entry = self.templates.get(name)
        if isinstance(entry, str):
            return entry
        if entry is None:
            return None
        primary = re.split(r"[-_]", language or "")[0]  # WhatsApp writes es_MX, BCP 47 es-MX
        for key in (language, primary, "default"):
            if key and key in entry:
                return entry[key]
        return None

    def requests(self, message: OutboundMessage, target: str) -> list[dict[str, Any]]:
        """The SDK's ``create`` arguments for each Message ``message`` becomes."""
        base: dict[str, Any] = {
            "to": PREFIX + target,
            **self._sender.sender_params(PREFIX + "{}"),
        }
        if message.extra.get("session_open") is True:
            texts = [part for part in message.parts if part.strip()]
            if not texts:
                raise Permanent(f"{self._name}: the message has no text to send")
            return [{**base, "body": text} for text in texts]
        template = message.extra.get("whatsapp_template")
        if not isinstance(template, Mapping) or not template.get("name"):
            raise Permanent(
                f"{OUTSIDE_SESSION_TEXT}: {self._name}: the session is not open and the message"
                " carries no approved template"
            )
        name = str(template["name"])
        language = template.get("language")
        sid = self.content_sid(name, str(language) if language else None)
        if sid is None:
            raise Permanent(
                f"{OUTSIDE_SESSION_TEXT}: {self._name}: no Content SID for template {name!r}"
                f" ({language or 'any language'}) in options.templates"
            )
        variables = [str(v) for v in template.get("variables") or ()]
        numbered = {str(n): value for n, value in enumerate(variables, start=1)}
        return [
            {
                **base,
                "content_sid": sid,
                "content_variables": json.dumps(numbered, ensure_ascii=False),
            }
        ]

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        check_e164(target, channel=self._name)
        requests = self.requests(message, target)
        if self.settings.status_callback is not None:
            requests[0] = {**requests[0], "status_callback": self.settings.status_callback}
        sids = await self._sender.create_parts(target, requests, event="whatsapp.partial_send")
        return Receipt(provider_message_id=sids[0])


def _templates(value: object, file: str, problems: list[ConfigProblem]) -> Templates:
    pattern = CONTENT_SID
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(ConfigProblem(file, "options.templates", "must be a table"))
        return {}
    templates: dict[str, str | Mapping[str, str]] = {}
    for name, entry in value.items():
        key = f"options.templates.{name}"
        if isinstance(entry, str):
            if not pattern.match(entry):
                problems.append(ConfigProblem(file, key, "is not a Content SID (HX + 32 hex)"))
            templates[str(name)] = entry
        elif isinstance(entry, Mapping):
            by_language: dict[str, str] = {}
            for language, sid in entry.items():
                if not isinstance(sid, str) or not pattern.match(sid):
                    problems.append(
                        ConfigProblem(
                            file, f"{key}.{language}", "is not a Content SID (HX + 32 hex)"
                        )
                    )
                    continue
                by_language[str(language)] = sid
            templates[str(name)] = by_language
        else:
            problems.append(
                ConfigProblem(file, key, "must be a Content SID or a table language → Content SID")
            )
    return templates


def from_config(channel: ChannelConfig, context: ChannelContext) -> TwilioWhatsAppChannel:
    """The WhatsApp channel of ``channels/NAME.toml``; ConfigError lists every problem."""
    problems: list[ConfigProblem] = []
    file = str(channel.file)
    settings = read_settings(channel, context, problems)
    templates = _templates(channel.options.get("templates"), file, problems)
    if settings is not None and settings.sender is not None:
        number = settings.sender.removeprefix(PREFIX)
        try:
            check_e164(number, channel=channel.name)
        except Permanent:
            problems.append(
                ConfigProblem(file, "options.from", "must be an E.164 number (+ and digits)")
            )
        else:
            settings = dataclasses.replace(settings, sender=number)
    raise_problems(problems)
    assert settings is not None
    return TwilioWhatsAppChannel(channel.name, settings, templates)
