"""The e-mail channel with the real SMTP client against a real (fake) relay on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alertcast.channels.email import (
    EmailChannel,
    RelaySettings,
    Sender,
    batch_target,
    from_config,
    message_id,
)
from alertcast.channels.registry import ChannelContext
from alertcast.config import ChannelConfig
from alertcast.errors import (
    ConfigError,
    Permanent,
    RecipientGone,
    SentButUnknown,
    Transient,
)
from alertcast.ports import Channel, FollowUpChannel, OutboundMessage
from tests.fakes.smtp_server import FakeSmtpServer

MESSAGE = OutboundMessage(
    parts=("SIMULACRO / EXERCISE Sismo M6.1 <costa>: aléjese de muros & ventanas",),
    subject="SIMULACRO / EXERCISE — Sismo M6.1",
    language="es-MX",
    severity="Extreme",
    extra={"alert_id": 7, "delivery_id": 41},
)
SENDER = Sender(
    address="alertas@example.org",
    display_name="Protección Civil",
    unsubscribe_url="https://alertas.example.org/baja",
    unsubscribe_mailto="baja@example.org",
)


@pytest.fixture
async def relay() -> AsyncIterator[FakeSmtpServer]:
    async with FakeSmtpServer() as server:
        yield server


def channel_for(
    relay: FakeSmtpServer, *, bcc_batch: int | None = None, timeout_s: float = 5.0
) -> EmailChannel:
    return EmailChannel(
        "correo",
        RelaySettings(host="127.0.0.1", port=relay.port, tls="none", timeout_s=timeout_s),
        SENDER,
        bcc_batch=bcc_batch,
    )


async def test_sends_multipart_mail_with_headers(relay: FakeSmtpServer) -> None:
    channel = channel_for(relay)
    assert isinstance(channel, Channel)
    assert isinstance(channel, FollowUpChannel)
    try:
        receipt = await channel.send(MESSAGE, "ana@example.net")
    finally:
        await channel.aclose()
    assert len(relay.received) == 1
    got = relay.received[0]
    assert got.mail_from == "alertas@example.org"
    assert got.rcpt_tos == ("ana@example.net",)
    mail = got.message
    assert mail["Subject"] == "SIMULACRO / EXERCISE — Sismo M6.1"
    assert mail["To"] == "ana@example.net"
    assert mail["Content-Language"] == "es-MX"
    assert mail["Message-ID"] == receipt.provider_message_id
    assert receipt.provider_message_id == message_id(MESSAGE, "ana@example.net", "example.org")
    assert mail["List-Unsubscribe"] == (
        "<https://alertas.example.org/baja>, <mailto:baja@example.org?subject=unsubscribe>"
    )
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",))
    rich = mail.get_body(("html",))
    assert plain is not None and rich is not None
    assert plain.get_content().strip() == MESSAGE.parts[0]
    # No renderer HTML: the text is escaped, never interpreted.
    assert "&lt;costa&gt;" in rich.get_content()
    assert "&amp; ventanas" in rich.get_content()
    assert "<costa>" not in rich.get_content()


async def test_renderer_html_is_used_and_no_post_header_without_https(
    relay: FakeSmtpServer,
) -> None:
    channel = EmailChannel(
        "correo",
        RelaySettings(host="127.0.0.1", port=relay.port, tls="none"),
        Sender(address="alertas@example.org", unsubscribe_mailto="baja@example.org"),
    )
    message = OutboundMessage(
        parts=("texto",),
        subject="Asunto",
        extra={"html": "<html><body><p><b>Rendered</b></p></body></html>"},
    )
    try:
        await channel.send(message, "luis@example.net")
    finally:
        await channel.aclose()
    mail = relay.received[0].message
    rich = mail.get_body(("html",))
    assert rich is not None and "<b>Rendered</b>" in rich.get_content()
    assert mail["List-Unsubscribe"] == "<mailto:baja@example.org?subject=unsubscribe>"
    assert mail["List-Unsubscribe-Post"] is None
    assert mail["Content-Language"] is None


async def test_connection_is_reused_across_messages(relay: FakeSmtpServer) -> None:
    channel = channel_for(relay)
    try:
        for n in range(3):
            await channel.send(MESSAGE, f"p{n}@example.net")
    finally:
        await channel.aclose()
    assert len(relay.received) == 3
    assert relay.connections == 1


async def test_reply_threads_under_the_earlier_message(relay: FakeSmtpServer) -> None:
    channel = channel_for(relay)
    assert channel.follow_up_for("Cancel") == "reply"
    assert channel.follow_up_for("Update") == "reply"
    assert channel.follow_up_for("Alert") is None
    try:
        first = await channel.send(MESSAGE, "ana@example.net")
        assert first.provider_message_id is not None
        cancel = OutboundMessage(
            parts=("CANCELADO",), subject="CANCELADO", extra={"delivery_id": 9}
        )
        second = await channel.reply(first.provider_message_id, cancel, "ana@example.net")
        with pytest.raises(Permanent):
            await channel.edit(first.provider_message_id, cancel, "ana@example.net")
        with pytest.raises(Permanent):
            await channel.delete(first.provider_message_id, "ana@example.net")
    finally:
        await channel.aclose()
    mail = relay.received[1].message
    assert mail["In-Reply-To"] == first.provider_message_id
    assert mail["References"] == first.provider_message_id
    assert second.provider_message_id != first.provider_message_id


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("451 4.3.0 Try again later", Transient),
        ("550 5.1.1 No such user", RecipientGone),
        ("551 5.1.6 User not local", RecipientGone),
        ("553 5.1.3 Mailbox name not allowed", RecipientGone),
        ("552 5.2.2 Mailbox full", Permanent),
        ("554 5.7.1 Relay access denied", Permanent),
    ],
)
async def test_rcpt_refusals_are_classified(
    relay: FakeSmtpServer, reply: str, error: type[Exception]
) -> None:
    relay.rcpt_replies["ana@example.net"] = reply
    channel = channel_for(relay)
    try:
        with pytest.raises(error) as caught:
            await channel.send(MESSAGE, "ana@example.net")
        assert type(caught.value) is error
        # The connection survives a refusal: the next message goes out on it.
        await channel.send(MESSAGE, "luis@example.net")
    finally:
        await channel.aclose()
    assert [m.rcpt_tos for m in relay.received] == [("luis@example.net",)]
    assert relay.connections == 1


@pytest.mark.parametrize(
    ("reply", "error"),
    [("451 4.3.0 Local error", Transient), ("554 5.7.1 Message rejected as spam", Permanent)],
)
async def test_data_refusals_are_classified(
    relay: FakeSmtpServer, reply: str, error: type[Exception]
) -> None:
    relay.data_reply = reply
    channel = channel_for(relay)
    try:
        with pytest.raises(error):
            await channel.send(MESSAGE, "ana@example.net")
    finally:
        await channel.aclose()


async def test_sender_refused_is_classified(relay: FakeSmtpServer) -> None:
    relay.mail_reply = "553 5.7.1 Sender address rejected"
    channel = channel_for(relay)
    try:
        with pytest.raises(Permanent):
            await channel.send(MESSAGE, "ana@example.net")
    finally:
        await channel.aclose()


async def test_timeout_after_data_is_sent_but_unknown(relay: FakeSmtpServer) -> None:
    relay.hang_after_data = True
    channel = channel_for(relay, timeout_s=0.3)
    try:
        with pytest.raises(SentButUnknown):
            await channel.send(MESSAGE, "ana@example.net")
    finally:
        await channel.aclose()
    assert len(relay.received) == 1  # it did arrive: exactly why it must not count as unsent


async def test_connection_refused_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = EmailChannel(
        "correo", RelaySettings(host="127.0.0.1", port=port, tls="none", timeout_s=2), SENDER
    )
    try:
        with pytest.raises(Transient):
            await channel.send(MESSAGE, "ana@example.net")
    finally:
        await channel.aclose()


async def test_starttls_required_but_not_offered_fails_without_sending(
    relay: FakeSmtpServer,
) -> None:
    channel = EmailChannel(
        "correo", RelaySettings(host="127.0.0.1", port=relay.port, tls="starttls"), SENDER
    )
    try:
        with pytest.raises(Transient):
            await channel.send(MESSAGE, "ana@example.net")
    finally:
        await channel.aclose()
    assert relay.received == []


async def test_bcc_batch_sends_one_blind_message(relay: FakeSmtpServer) -> None:
    relay.rcpt_replies["gone@example.net"] = "550 5.1.1 No such user"
    channel = channel_for(relay, bcc_batch=3)
    target = batch_target(["a@example.net", "gone@example.net", "b@example.net"])
    assert target == "bcc:a@example.net,gone@example.net,b@example.net"
    try:
        receipt = await channel.send(MESSAGE, target)
    finally:
        await channel.aclose()
    assert len(relay.received) == 1
    got = relay.received[0]
    assert got.rcpt_tos == ("a@example.net", "b@example.net")
    mail = got.message
    assert "a@example.net" not in str(mail["To"])
    assert "undisclosed-recipients" in str(mail["To"])
    assert mail["Bcc"] is None
    assert mail["Message-ID"] == receipt.provider_message_id


async def test_bcc_batch_with_a_temporary_refusal_sends_nothing(relay: FakeSmtpServer) -> None:
    relay.rcpt_replies["busy@example.net"] = "452 4.2.2 Mailbox busy"
    channel = channel_for(relay, bcc_batch=5)
    try:
        with pytest.raises(Transient):
            await channel.send(MESSAGE, batch_target(["a@example.net", "busy@example.net"]))
    finally:
        await channel.aclose()
    assert relay.received == []
    assert relay.rsets >= 1


async def test_bcc_batch_all_gone_is_recipient_gone(relay: FakeSmtpServer) -> None:
    relay.rcpt_replies.update({"x@example.net": "550 no", "y@example.net": "550 no"})
    channel = channel_for(relay, bcc_batch=5)
    try:
        with pytest.raises(RecipientGone):
            await channel.send(MESSAGE, batch_target(["x@example.net", "y@example.net"]))
    finally:
        await channel.aclose()


@pytest.mark.parametrize(
    "target",
    ["not-an-address", "a@b.c\r\nBcc: evil@example.net", "bcc:a@example.net", ""],
)
async def test_unusable_targets_are_permanent(relay: FakeSmtpServer, target: str) -> None:
    channel = channel_for(relay)  # no bcc_batch: a bcc: target is refused too
    try:
        with pytest.raises(Permanent):
            await channel.send(MESSAGE, target)
    finally:
        await channel.aclose()
    assert relay.received == []


async def test_oversized_batch_is_permanent(relay: FakeSmtpServer) -> None:
    channel = channel_for(relay, bcc_batch=2)
    try:
        with pytest.raises(Permanent):
            await channel.send(MESSAGE, batch_target(["a@x.org", "b@x.org", "c@x.org"]))
    finally:
        await channel.aclose()


async def test_check_connects(relay: FakeSmtpServer) -> None:
    channel = channel_for(relay)
    try:
        assert "accepted" in await channel.check()
    finally:
        await channel.aclose()


def _config(tmp_path: Path, options: dict[str, object], **secrets: str) -> ChannelConfig:
    return ChannelConfig(
        name="correo",
        kind="email",
        file=tmp_path / "email.toml",
        options=options,
        secrets=secrets,
    )


def test_from_config_reads_options_and_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_USER_T", "user")
    monkeypatch.setenv("SMTP_PASS_T", "pa55")
    config = _config(
        tmp_path,
        {"host": "smtp.example.org", "from": "alertas@example.org", "tls": "implicit"},
        username="SMTP_USER_T",
        password="SMTP_PASS_T",
    )
    channel = from_config(config, ChannelContext(data_dir=tmp_path))
    assert channel.relay.port == 465
    assert channel.relay.username == "user"
    assert "pa55" not in repr(channel)


def test_from_config_reports_every_problem(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        {"tls": "ssl", "from": "nobody", "bcc_batch": 0, "unsubscribe_url": "ftp://x"},
    )
    with pytest.raises(ConfigError) as caught:
        from_config(config, ChannelContext(data_dir=tmp_path))
    keys = {p.key for p in caught.value.problems}
    assert {
        "options.host",
        "options.tls",
        "options.from",
        "options.bcc_batch",
        "options.unsubscribe_url",
    } <= keys


def test_credentials_without_tls_are_refused(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        {"host": "smtp.example.org", "from": "a@example.org", "tls": "none"},
        username="SMTP_USER_T",
        password="SMTP_PASS_T",
    )
    with pytest.raises(ConfigError) as caught:
        from_config(config, ChannelContext(data_dir=tmp_path))
    assert [p.key for p in caught.value.problems] == ["options.tls"]


def test_example_config_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    root = Path(__file__).resolve().parents[2]
    data = tomllib.loads((root / "channels" / "email.toml").read_text(encoding="utf-8"))
    assert data["enabled"] is False
    config = ChannelConfig(
        name=data["name"],
        kind=data["kind"],
        file=root / "channels" / "email.toml",
        options=data["options"],
        secrets=data.get("secrets", {}),
    )
    channel = from_config(config, ChannelContext(data_dir=root / "data"))
    assert channel.kind == "email"
