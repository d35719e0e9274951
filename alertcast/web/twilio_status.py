"""``POST /webhooks/twilio/status``: Twilio's message status callbacks, checked and recorded.

A message Twilio accepted is only ``sent`` in the ledger; whether it reached
the phone comes later, as a form POST to the ``StatusCallback`` URL the
channel gave (``...?channel=NAME``). This route:

1. **Checks the signature.** ``X-Twilio-Signature`` is an HMAC-SHA1, keyed
   with the channel's auth token, of the full URL Twilio called and the
   sorted form parameters; the SDK's ``RequestValidator`` checks it. The URL
   must be the one Twilio called: behind a proxy that terminates TLS or
   rewrites the host, pass ``public_url`` (the service's public base URL) and
   the path and query of the request are appended to it. A request without a
   valid signature (forged, unsigned, for an unknown channel) is answered
   403, logged as an error and written to the audit trail
   (``webhook.rejected``): someone is sending fake delivery reports.
2. **Records the receipt** with
   :func:`alertcast.dispatch.receipts.record_receipt` (``MessageSid``,
   ``MessageStatus``, ``ErrorCode``): ``delivered``/``read`` and
   ``undelivered``/``failed`` move the row, anything else changes nothing.
   A receipt with error 30007 is also logged as ``sms.carrier_filtered``,
   since carriers usually report filtering this way, after acceptance.
3. **Answers** 200 with empty TwiML, which Twilio expects of a webhook.

The channel is named by the ``channel`` query parameter rather than found by
``AccountSid``: an SMS and a WhatsApp channel often share one account, and
the receipt must update the rows of the channel that sent the message. The
query is covered by the signature.

Register with ``add_twilio_routes(app, engine, auth_tokens, public_url)``,
``auth_tokens`` mapping each Twilio channel's name to its auth token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from twilio.request_validator import RequestValidator

from alertcast import audit
from alertcast.channels.twilio_common import (
    CARRIER_FILTERED,
    CARRIER_FILTERED_EVENT,
    CHANNEL_QUERY,
    STATUS_CALLBACK_PATH,
    mask,
)
from alertcast.dispatch.receipts import record_receipt
from alertcast.errors import StoreError

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
REJECTED_ACTION = "webhook.rejected"
ACTOR = "provider:twilio"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_BODY_BYTES = 64 * 1024
"""A status callback is a few hundred bytes of form fields."""


class TwilioStatusRoute:
    """The handler, with the tokens that check signatures and the database it records into."""

    def __init__(
        self, engine: AsyncEngine, auth_tokens: Mapping[str, str], public_url: str | None
    ) -> None:
        self.engine = engine
        self._validators = {name: RequestValidator(token) for name, token in auth_tokens.items()}
        self.public_url = public_url.rstrip("/") if public_url else None

    def __repr__(self) -> str:  # the tokens never appear in a repr or a log
        return f"TwilioStatusRoute(channels={sorted(self._validators)!r})"

    def signed_url(self, request: web.Request) -> str:
        """The URL Twilio signed: the public base URL and the request's path and query."""
        if self.public_url is None:
            return str(request.url)
        return self.public_url + str(request.rel_url)

    def signature_problem(
        self, request: web.Request, channel: str, params: Mapping[str, str]
    ) -> str | None:
        """Why the request is not Twilio's (unknown channel, no or wrong signature), else None.

        Shared by every Twilio webhook (status callbacks, inbound messages).
        """
        validator = self._validators.get(channel)
        if validator is None:
            return "unknown channel"
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            return "no signature"
        if not validator.validate(self.signed_url(request), params, signature):
            return "signature does not match"
        return None

    async def signed_form(self, request: web.Request, path: str) -> tuple[str, dict[str, str]]:
        """The channel and form fields of a request Twilio signed, else an HTTP error.

        Shared by every Twilio webhook: too large a body is 413, and a request
        that is not Twilio's is 403 and written to the audit trail as a refusal
        of the webhook at ``path`` (see :meth:`reject`).
        """
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_BODY_BYTES, actual_size=request.content_length
            )
        form = await request.post()
        params = {key: str(value) for key, value in form.items() if isinstance(value, str)}
        channel = request.query.get(CHANNEL_QUERY, "")
        problem = self.signature_problem(request, channel, params)
        if problem is not None:
            await self.reject(request, channel, params, problem, path=path)
        return channel, params

    async def handle(self, request: web.Request) -> web.StreamResponse:
        channel, params = await self.signed_form(request, STATUS_CALLBACK_PATH)
        sid = params.get("MessageSid") or params.get("SmsSid")
        status = params.get("MessageStatus") or params.get("SmsStatus")
        if not sid or not status:
            log.warning("twilio.status_incomplete", channel=channel, fields=sorted(params))
            return _twiml()
        error_code = params.get("ErrorCode") or None
        if error_code == str(CARRIER_FILTERED):
            log.error(
                CARRIER_FILTERED_EVENT,
                channel=channel,
                provider_message_id=sid,
                target=mask(params.get("To", "")),
                error_code=error_code,
                hint="a carrier filtered it: review the wording and the sender's registration",
            )
        try:
            await record_receipt(
                self.engine,
                channel=channel,
                provider_message_id=sid,
                status=status,
                error_code=error_code,
            )
        except StoreError as exc:
            log.error("twilio.status_not_recorded", channel=channel, error=str(exc))
            raise web.HTTPServiceUnavailable(text="cannot record the status now") from exc
        return _twiml()

    async def reject(
        self,
        request: web.Request,
        channel: str,
        params: Mapping[str, str],
        reason: str,
        *,
        path: str,
    ) -> NoReturn:
        """Refuse a request that is not Twilio's: logged as an error, audited, answered 403.

        Someone posting forged callbacks is forging delivery reports or
        opt-outs, so each refusal goes into the trail as ``webhook.rejected``
        with ``webhook:PATH`` as its subject.
        """
        data: dict[str, Any] = {
            "path": request.path,
            "channel": channel[:100],
            "reason": reason,
            "remote": request.remote,
            "message_sid": params.get("MessageSid", "")[:64],
        }
        log.error("twilio.webhook_rejected", **data)
        await audit_webhook(
            self.engine,
            action=REJECTED_ACTION,
            path=path,
            data=data,
            failure_event="twilio.webhook_rejection_not_audited",
        )
        raise web.HTTPForbidden(text="invalid signature")


async def audit_webhook(
    engine: AsyncEngine, *, action: str, path: str, data: dict[str, Any], failure_event: str
) -> None:
    """Write what a Twilio webhook refused to the audit trail, as ``provider:twilio``.

    A database that cannot take the record is logged as ``failure_event`` and
    does not change the answer: Twilio is owed the same reply either way.
    """
    try:
        await audit.record(engine, actor=ACTOR, action=action, subject=f"webhook:{path}", data=data)
    except StoreError as exc:
        log.error(failure_event, error=str(exc))


def _twiml() -> web.Response:
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


def add_twilio_routes(
    app: web.Application,
    engine: AsyncEngine,
    auth_tokens: Mapping[str, str],
    public_url: str | None,
) -> TwilioStatusRoute:
    """Add ``POST /webhooks/twilio/status`` to ``app``; ``auth_tokens``: channel name → token."""
    route = TwilioStatusRoute(engine, auth_tokens, public_url)
    app.router.add_post(STATUS_CALLBACK_PATH, route.handle)
    return route
