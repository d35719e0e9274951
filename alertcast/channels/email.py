"""The ``email`` channel: each message as a multipart e-mail through an SMTP relay.

What a reader's mail program gets, and why:

* **Plain text and HTML** (``multipart/alternative``): the HTML the renderer
  made (``message.extra["html"]``) when there is one, else the text escaped
  into a minimal HTML body, so every client shows the same words, and a
  screen reader or a text-only client still gets the whole message.
* **Subject** from ``message.subject`` (it already carries the
  SIMULACRO / EXERCISE prefix for a drill), ``Content-Language`` from
  ``message.language``.
* **List-Unsubscribe** (RFC 2369) with ``options.unsubscribe_url`` and/or
  ``options.unsubscribe_mailto``, plus ``List-Unsubscribe-Post:
  List-Unsubscribe=One-Click`` (RFC 8058) when the URL is https: large
  mailbox providers file bulk mail without it as spam, and an alert in the
  spam folder reaches nobody.
* **A stable Message-ID**, derived from the ledger row (or, without one,
  from the message and target): a resend after an ambiguous timeout carries
  the same id, which lets mailbox providers drop the copy. It is the
  receipt's ``provider_message_id``, and an Update or Cancel is sent as a
  reply to it (``In-Reply-To``/``References``), so the cancellation lands in
  the same thread as the warning it withdraws. Mail cannot be edited or
  deleted once delivered.

**Targets.** A target is one address (``ana@example.org``): one message per
recipient, so each refusal is known per person. With ``options.bcc_batch =
N`` the planner may instead group up to N addresses of one language into one
target ``bcc:ana@example.org,luis@example.org,...``: one SMTP transaction
whose recipients are all blind copies (``To: undisclosed-recipients:;``).
That trades per-person outcomes for throughput on relays that count
messages rather than recipients. In a batch, a recipient the relay refuses
for good (5xx) is logged and left out while the others are sent to; a
temporary refusal (4xx) of any of them aborts the transaction before DATA
(nothing was sent) and the whole batch is retried, so nobody is lost and
nobody gets it twice. ``bcc:`` targets are refused unless ``bcc_batch`` is
set, and a batch larger than ``bcc_batch`` is refused.

**Failures** are classified in one function, :func:`classify`: SMTP 4xx →
Transient, 5xx → Permanent, 550/551/553 at RCPT (mailbox unavailable, not
local, name not allowed) → RecipientGone, a refused or failed connection →
Transient, and a timeout or a dropped connection once DATA was under way →
SentButUnknown (the relay may have queued the message). The channel never
retries by itself.

**Connections** open lazily on the first send and are reused (at most
``options.connections`` at a time, default 1); a connection that failed in
any way other than a recipient refusal is closed and a fresh one is opened
for the next message. TLS: ``options.tls = "starttls"`` (default, port 587),
``"implicit"`` (port 465) or ``"none"`` (port 25, a relay on a trusted
network; credentials are then refused so they never travel in clear).
Credentials come from the secrets ``username`` and ``password``.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formataddr, formatdate
from typing import TYPE_CHECKING, Any

import aiosmtplib
import structlog

from alertcast.audit import canonical_json
from alertcast.errors import (
    ChannelError,
    ConfigError,
    ConfigProblem,
    Permanent,
    RecipientGone,
    SentButUnknown,
    Transient,
)
from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

log = structlog.get_logger(__name__)

BCC_PREFIX = "bcc:"
"""A target starting with this names a batch of blind-copy recipients."""

GONE_CODES = frozenset({550, 551, 553})
"""RCPT refusals meaning the mailbox is not there (RFC 5321 §4.2.3): the subscription is stale."""

TLS_MODES = ("starttls", "implicit", "none")
_DEFAULT_PORTS = {"starttls": 587, "implicit": 465, "none": 25}
_ADDRESS = re.compile(r"^[^@\s,;<>()\[\]\"]+@[^@\s,;<>()\[\]\"]+\.[^@\s,;<>()\[\]\"]+$")
_UNDISCLOSED = "undisclosed-recipients:;"
EXCERPT_CHARS = 200


def is_address(text: str) -> bool:
    """A plain ``local@domain`` address (no display name, no quoting, no comments)."""
    return bool(_ADDRESS.match(text))


def batch_target(addresses: Sequence[str]) -> str:
    """The target naming ``addresses`` as one blind-copy batch (what a planner would write)."""
    return BCC_PREFIX + ",".join(addresses)


def recipients_of(target: str, bcc_batch: int | None) -> tuple[list[str], bool]:
    """The envelope recipients of ``target`` and whether they are a blind-copy batch.

    Raises Permanent for a target that can never be sent to: retrying it
    would change nothing.
    """
    if target.startswith(BCC_PREFIX):
        if not bcc_batch:
            raise Permanent(f"target {target[:60]!r} is a bcc batch but options.bcc_batch is unset")
        addresses = [part.strip() for part in target[len(BCC_PREFIX) :].split(",")]
        addresses = list(dict.fromkeys(a for a in addresses if a))
        if not addresses:
            raise Permanent("the bcc batch names no address")
        if len(addresses) > bcc_batch:
            raise Permanent(f"the bcc batch has {len(addresses)} addresses; at most {bcc_batch}")
        bad = [a for a in addresses if not is_address(a)]
        if bad:
            raise Permanent(f"not e-mail addresses: {', '.join(repr(b[:60]) for b in bad[:3])}")
        return addresses, True
    address = target.strip()
    if not is_address(address):
        raise Permanent(f"{target[:60]!r} is not an e-mail address")
    return [address], False


# --------------------------------------------------------------------------- the message


def message_id(message: OutboundMessage, target: str, domain: str) -> str:
    """The same ``<...@domain>`` for every attempt of ``message`` to ``target``."""
    delivery_id = message.extra.get("delivery_id")
    if delivery_id is not None:
        material = canonical_json({"delivery_id": str(delivery_id), "target": target})
    else:
        material = canonical_json({"target": target, "message": message.to_json()})
    digest = hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]
    return f"<alertcast.{digest}@{domain}>"


def text_to_html(text: str, language: str | None) -> str:
    """A minimal HTML body carrying exactly ``text``, escaped, line breaks kept."""
    lang = f' lang="{html.escape(language, quote=True)}"' if language else ""
    paragraphs = "\n".join(
        "<p>" + html.escape(block).replace("\n", "<br>\n") + "</p>"
        for block in text.split("\n\n")
        if block.strip()
    )
    return (
        f'<!doctype html>\n<html{lang}><head><meta charset="utf-8"></head>\n'
        f"<body>\n{paragraphs}\n</body></html>\n"
    )


@dataclass(frozen=True, slots=True)
class Sender:
    """Who the mail is from and what goes in its fixed headers."""

    address: str
    display_name: str | None = None
    reply_to: str | None = None
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


def build_email(
    message: OutboundMessage,
    *,
    sender: Sender,
    to: Sequence[str],
    blind: bool,
    msg_id: str,
    in_reply_to: str | None = None,
) -> EmailMessage:
    """The e-mail for ``message``: headers, a text part and an HTML part."""
    mail = EmailMessage(policy=SMTP_POLICY)
    mail["From"] = (
        formataddr((sender.display_name, sender.address)) if sender.display_name else sender.address
    )
    mail["To"] = _UNDISCLOSED if blind else ", ".join(to)
    subject = message.subject or (message.parts[0].splitlines()[0] if message.parts else "")
    mail["Subject"] = " ".join(subject.split())[:998]
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = msg_id
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    if sender.reply_to:
        mail["Reply-To"] = sender.reply_to
    unsubscribe = []
    if sender.unsubscribe_url:
        unsubscribe.append(f"<{sender.unsubscribe_url}>")
    if sender.unsubscribe_mailto:
        unsubscribe.append(f"<mailto:{sender.unsubscribe_mailto}?subject=unsubscribe>")
    if unsubscribe:
        mail["List-Unsubscribe"] = ", ".join(unsubscribe)
        if sender.unsubscribe_url and sender.unsubscribe_url.startswith("https://"):
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Bulk, not an auto-reply: vacation responders stay quiet.
    mail["Auto-Submitted"] = "auto-generated"
    text = "\n\n".join(message.parts)
    mail.set_content(text, subtype="plain", charset="utf-8")
    body_html = message.extra.get("html")
    if not isinstance(body_html, str) or not body_html.strip():
        body_html = text_to_html(text, message.language)
    mail.add_alternative(body_html, subtype="html", charset="utf-8")
    if message.language:  # after the body: setting content clears every Content-* header
        mail["Content-Language"] = message.language
    return mail


# --------------------------------------------------------------------------- failures


def _excerpt(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


def by_code(code: int, text: str, *, at_rcpt: bool = False) -> ChannelError:
    """An SMTP reply code as an error class: 4xx Transient, 5xx Permanent, gone at RCPT."""
    if at_rcpt and code in GONE_CODES:
        return RecipientGone(text)
    if 400 <= code < 500:
        return Transient(text)
    return Permanent(text)


def classify(error: Exception, *, relay: str, data_started: bool) -> ChannelError:
    """The one place SMTP failures become error classes.

    ``data_started`` says whether the DATA command was under way: once the
    message may have reached the relay, losing the answer (a timeout, a
    dropped connection, anything unexpected) is SentButUnknown, never
    Transient, so that it is not silently sent twice.
    """
    name = type(error).__name__
    if isinstance(error, aiosmtplib.SMTPRecipientRefused):
        text = f"{relay} refused {error.recipient}: {error.code} {_excerpt(error.message)}"
        return by_code(error.code, text, at_rcpt=True)
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        refusals = list(error.recipients)
        if refusals and all(r.code in GONE_CODES for r in refusals):
            return RecipientGone(f"{relay} refused every recipient ({refusals[0].code})")
        if any(400 <= r.code < 500 for r in refusals):
            return Transient(f"{relay} refused recipients for now")
        return Permanent(f"{relay} refused every recipient")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        what = {
            aiosmtplib.SMTPSenderRefused: "refused the sender",
            aiosmtplib.SMTPDataError: "refused the message",
            aiosmtplib.SMTPAuthenticationError: "refused the credentials",
            aiosmtplib.SMTPHeloError: "refused the greeting",
        }.get(type(error), "answered")
        text = f"{relay} {what}: {error.code} {_excerpt(error.message)}"
        if isinstance(error, aiosmtplib.SMTPConnectResponseError) or error.code < 400:
            return Transient(text)
        return by_code(error.code, text)
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return Permanent(f"{relay}: {_excerpt(str(error))} (check options.tls)")
    if isinstance(error, ssl.SSLError):
        # A certificate problem does not fix itself quickly, but an operator can fix it:
        # the worker's attempts and dead state keep it visible instead of dropping the mail.
        return Transient(f"{relay}: TLS failed ({name}: {_excerpt(str(error))})")
    if data_started:
        return SentButUnknown(
            f"{relay}: no answer after the message was sent ({name}: {_excerpt(str(error))})"
        )
    if isinstance(error, aiosmtplib.SMTPConnectError | ConnectionRefusedError):
        return Transient(f"{relay}: cannot connect ({name}: {_excerpt(str(error))})")
    return Transient(f"{relay}: {name}: {_excerpt(str(error))}")


# --------------------------------------------------------------------------- channel


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """Where and how to reach the SMTP relay."""

    host: str
    port: int
    tls: str = "starttls"
    timeout_s: float = 30.0
    validate_certs: bool = True
    username: str | None = None
    password: str | None = None
    local_hostname: str | None = None

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"


class EmailChannel:
    """Sends each message through one SMTP relay; implements ``FollowUpChannel`` (reply)."""

    kind = "email"
    follow_ups = frozenset({"reply"})

    def __init__(
        self,
        name: str,
        relay: RelaySettings,
        sender: Sender,
        *,
        bcc_batch: int | None = None,
        connections: int = 1,
    ) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self._name = name
        self.relay = relay
        self.sender = sender
        self.bcc_batch = bcc_batch
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(connections)
        self._open: set[aiosmtplib.SMTP] = set()

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:  # credentials never appear in a repr or a log
        return f"EmailChannel(name={self._name!r}, relay={self.relay.label!r})"

    def follow_up_for(self, msg_type: str) -> str | None:
        """Updates and Cancels are replies in the warning's thread; mail cannot be edited."""
        return "reply" if msg_type in ("Update", "Cancel") else None

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        return await self._deliver(message, target, in_reply_to=None)

    async def reply(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        return await self._deliver(message, target, in_reply_to=provider_message_id)

    async def edit(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        raise Permanent("an e-mail cannot be edited once sent")

    async def delete(self, provider_message_id: str, target: str) -> None:
        raise Permanent("an e-mail cannot be deleted once sent")

    async def check(self) -> str:
        """Connect, greet and log in, then say goodbye: the relay and credentials work."""
        async with self._slots:
            client = None
            try:
                client = await self._connect()
                await client.noop()
            except Exception as exc:
                raise classify(exc, relay=self.relay.label, data_started=False) from exc
            finally:
                if client is not None:
                    self._discard(client)
        return f"{self.relay.label} accepted the connection ({self.relay.tls})"

    async def _deliver(
        self, message: OutboundMessage, target: str, *, in_reply_to: str | None
    ) -> Receipt:
        recipients, blind = recipients_of(target, self.bcc_batch)
        msg_id = message_id(message, target, self.sender.domain)
        mail = build_email(
            message,
            sender=self.sender,
            to=recipients,
            blind=blind,
            msg_id=msg_id,
            in_reply_to=in_reply_to,
        )
        payload = mail.as_bytes(policy=SMTP_POLICY)
        async with self._slots:
            await self._transaction(payload, recipients, blind, target)
        log.info("email.sent", channel=self._name, recipients=len(recipients), message_id=msg_id)
        return Receipt(provider_message_id=msg_id)

    async def _transaction(
        self, payload: bytes, recipients: list[str], blind: bool, target: str
    ) -> None:
        client: aiosmtplib.SMTP | None = None
        data_started = False
        keep = False
        try:
            client = self._idle.pop() if self._idle else await self._connect()
            await client.mail(self.sender.address)
            accepted, refused = await self._recipients(client, recipients, blind)
            if not accepted:
                await client.rset()
                keep = True
                if len(refused) == 1:
                    raise refused[0]
                raise aiosmtplib.SMTPRecipientsRefused(refused)
            data_started = True
            await client.data(payload)
            keep = True
            if refused:
                log.warning(
                    "email.batch_recipients_refused",
                    channel=self._name,
                    refused=[f"{r.recipient}: {r.code}" for r in refused],
                    accepted=len(accepted),
                )
        except ChannelError:
            keep = client is not None and not data_started
            raise
        except aiosmtplib.SMTPRecipientRefused as exc:
            keep = True
            raise classify(exc, relay=self.relay.label, data_started=False) from exc
        except Exception as exc:  # cancellation (a BaseException) passes through untouched
            raise classify(exc, relay=self.relay.label, data_started=data_started) from exc
        finally:
            if client is not None:
                if keep and client.is_connected:
                    self._idle.append(client)
                else:
                    self._discard(client)

    async def _recipients(
        self, client: aiosmtplib.SMTP, recipients: list[str], blind: bool
    ) -> tuple[list[str], list[aiosmtplib.SMTPRecipientRefused]]:
        """RCPT each recipient; a temporary refusal in a batch aborts it before DATA."""
        accepted: list[str] = []
        refused: list[aiosmtplib.SMTPRecipientRefused] = []
        for address in recipients:
            try:
                await client.rcpt(address)
            except aiosmtplib.SMTPRecipientRefused as exc:
                if blind and 400 <= exc.code < 500:
                    await client.rset()
                    raise Transient(
                        f"{self.relay.label} refused {address} for now ({exc.code});"
                        " the batch is retried whole"
                    ) from exc
                refused.append(exc)
            else:
                accepted.append(address)
        return accepted, refused

    async def _connect(self) -> aiosmtplib.SMTP:
        relay = self.relay
        client = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            use_tls=relay.tls == "implicit",
            start_tls=relay.tls == "starttls",
            validate_certs=relay.validate_certs,
            timeout=relay.timeout_s,
            username=relay.username,
            password=relay.password,
            local_hostname=relay.local_hostname,
        )
        await client.connect()
        self._open.add(client)
        return client

    def _discard(self, client: aiosmtplib.SMTP) -> None:
        self._open.discard(client)
        client.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            self._open.discard(client)
            if client.is_connected:
                try:
                    await asyncio.wait_for(client.quit(), timeout=2.0)
                except Exception as exc:  # a relay that will not say goodbye is closed anyway
                    log.debug("email.quit_failed", channel=self._name, error=type(exc).__name__)
                    client.close()
        for client in list(self._open):
            client.close()
        self._open.clear()


# --------------------------------------------------------------------------- configuration


def from_config(channel: ChannelConfig, context: ChannelContext) -> EmailChannel:
    """The e-mail channel of ``channels/NAME.toml`` (see ``channels/email.toml``)."""
    file = str(channel.file)
    options: Mapping[str, Any] = channel.options
    problems: list[ConfigProblem] = []

    def problem(key: str, text: str) -> None:
        problems.append(ConfigProblem(file, key, text))

    host = options.get("host")
    if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host.strip()):
        problem("options.host", "must be the SMTP relay's host name")
        host = ""
    tls = options.get("tls", "starttls")
    if tls not in TLS_MODES:
        problem("options.tls", f"must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        tls = "starttls"
    port = options.get("port", _DEFAULT_PORTS[tls])
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        problem("options.port", f"must be a port number, not {port!r}")
        port = _DEFAULT_PORTS[tls]
    timeout = options.get("timeout_s", 30.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        problem("options.timeout_s", "must be a number > 0")
        timeout = 30.0
    validate = options.get("validate_certs", True)
    if not isinstance(validate, bool):
        problem("options.validate_certs", "must be true or false")
        validate = True
    address = options.get("from")
    if not isinstance(address, str) or not is_address(address):
        problem("options.from", "must be the sender's address, like alertas@example.org")
        address = "invalid@invalid.invalid"
    texts: dict[str, str | None] = {}
    for key in ("from_name", "reply_to", "unsubscribe_url", "unsubscribe_mailto", "local_hostname"):
        value = options.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            problem(f"options.{key}", "must be a non-empty string")
            value = None
        if isinstance(value, str) and any(c in value for c in "\r\n"):
            problem(f"options.{key}", "must be on one line")
            value = None
        texts[key] = value
    for key in ("reply_to", "unsubscribe_mailto"):
        value = texts[key]
        if value is not None and not is_address(value):
            problem(f"options.{key}", "must be an e-mail address")
            texts[key] = None
    url = texts["unsubscribe_url"]
    if url is not None and (
        not re.match(r"^https?://[^\s<>]+$", url) or any(c in url for c in "<>,")
    ):
        problem("options.unsubscribe_url", "must be an http:// or https:// address")
        texts["unsubscribe_url"] = None
    bcc = options.get("bcc_batch")
    if bcc is not None and (isinstance(bcc, bool) or not isinstance(bcc, int) or bcc < 1):
        problem("options.bcc_batch", "must be a whole number ≥ 1 (recipients per message)")
        bcc = None
    connections = options.get("connections", 1)
    if isinstance(connections, bool) or not isinstance(connections, int) or connections < 1:
        problem("options.connections", "must be a whole number ≥ 1")
        connections = 1
    username = channel.secret("username")
    password = channel.secret("password")
    if ("username" in channel.secrets) != ("password" in channel.secrets):
        problem("secrets", "name both username and password, or neither")
    if tls == "none" and ("username" in channel.secrets or "password" in channel.secrets):
        problem("options.tls", "credentials are never sent without TLS; use starttls or implicit")
    if problems:
        raise ConfigError(problems)
    return EmailChannel(
        channel.name,
        RelaySettings(
            host=str(host).strip(),
            port=int(port),
            tls=str(tls),
            timeout_s=float(timeout),
            validate_certs=bool(validate),
            username=username,
            password=password,
            local_hostname=texts["local_hostname"],
        ),
        Sender(
            address=str(address),
            display_name=texts["from_name"],
            reply_to=texts["reply_to"],
            unsubscribe_url=texts["unsubscribe_url"],
            unsubscribe_mailto=texts["unsubscribe_mailto"],
        ),
        bcc_batch=bcc,
        connections=int(connections),
    )


__all__ = [
    "BCC_PREFIX",
    "EmailChannel",
    "RelaySettings",
    "Sender",
    "batch_target",
    "build_email",
    "classify",
    "from_config",
    "is_address",
    "message_id",
    "recipients_of",
]
