"""A fake SMTP relay (aiosmtpd) that records what it accepts and refuses on purpose.

It speaks real SMTP (RFC 5321) on 127.0.0.1, so the e-mail channel is tested
with the real client library end to end. Knobs:

``rcpt_replies``
    address → the full reply to its ``RCPT TO`` (``"451 4.3.0 Try again"``,
    ``"550 5.1.1 No such user"``, ``"552 5.2.2 Mailbox full"``); other
    addresses get ``250 OK``. Reply codes and texts follow RFC 5321 §4.2 and
    the enhanced status codes of RFC 3463.
``data_reply``
    the reply to the end of DATA instead of ``250``, e.g.
    ``"554 5.7.1 Message rejected"``.
``mail_reply``
    the reply to ``MAIL FROM`` instead of ``250``.
``hang_after_data``
    the message is received and **recorded**, then the relay never answers
    (until it stops): the client's timeout fires after the message left, the
    ambiguous case.

In-process: ``async with FakeSmtpServer() as relay: ... relay.port``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One message the relay accepted: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class FakeSmtpServer:
    """An SMTP relay on ``127.0.0.1:port`` (0: any free port) in the running event loop."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    mail_reply: str | None = None
    hang_after_data: bool = False
    received: list[ReceivedMail] = field(default_factory=list)
    connections: int = 0
    rsets: int = 0
    host: str = "127.0.0.1"
    port: int = 0
    _server: asyncio.Server | None = None
    _release: asyncio.Event | None = None
    _protocols: list[SMTP] = field(default_factory=list)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._release = asyncio.Event()

        def factory() -> SMTP:
            self.connections += 1
            protocol = SMTP(self, hostname="relay.test", loop=loop, timeout=30)
            self._protocols.append(protocol)
            return protocol

        self._server = await loop.create_server(factory, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._release is not None:
            self._release.set()
        if self._server is not None:
            self._server.close()
            for protocol in self._protocols:
                if protocol.transport is not None:
                    protocol.transport.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeSmtpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ aiosmtpd hooks

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.mail_reply is not None:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.rsets += 1
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if self.data_reply is not None:
            return self.data_reply
        self.received.append(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=bytes(content),
            )
        )
        if self.hang_after_data:
            assert self._release is not None
            await self._release.wait()
        return "250 2.0.0 Ok: queued"
