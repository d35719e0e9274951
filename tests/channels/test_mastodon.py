"""The Mastodon channel over real HTTP against the fake instance: posts, threads, failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alertcast.channels.mastodon import MastodonChannel, from_config
from alertcast.channels.registry import ChannelContext
from alertcast.config import ChannelConfig
from alertcast.errors import ConfigError, Permanent, RateLimited, SentButUnknown, Transient
from alertcast.ports import FollowUpChannel, OutboundMessage
from tests.fakes.mastodon_api import FakeMastodon

MESSAGE = OutboundMessage(
    parts=("SISMO M6.1 en Oaxaca: aléjese de muros y ventanas.",),
    language="es-MX",
    severity="Extreme",
    extra={"alert_id": 7, "delivery_id": 70},
)
THREAD = OutboundMessage(
    parts=("Parte 1: evacúe la zona costera.", "Parte 2: diríjase a zonas altas.", "Parte 3: fin."),
    language="es",
    severity="Severe",
    extra={"alert_id": 8, "delivery_id": 80},
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeMastodon]:
    async with FakeMastodon() as server:
        yield server


def channel_for(fake: FakeMastodon, **kwargs: object) -> MastodonChannel:
    return MastodonChannel("mastodon", fake.url, access_token=fake.token, **kwargs)  # type: ignore[arg-type]


async def test_send_posts_a_public_status_with_language_and_idempotency_key(
    fake: FakeMastodon,
) -> None:
    channel = channel_for(fake)
    try:
        receipt = await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert isinstance(channel, FollowUpChannel)
    assert receipt.provider_message_id == fake.posted[0]
    status = fake.statuses[fake.posted[0]]
    assert "aléjese de muros" in status["content"]
    assert status["visibility"] == "public"
    assert status["language"] == "es"  # ISO 639-1, not es-MX
    assert status["spoiler_text"] == ""  # no content warning unless configured
    method, path, headers = fake.requests[0]
    assert (method, path) == ("POST", "/api/v1/statuses")
    assert headers["Authorization"] == f"Bearer {fake.token}"
    assert headers["Idempotency-Key"]


async def test_a_resent_message_is_not_posted_twice(fake: FakeMastodon) -> None:
    channel = channel_for(fake)
    try:
        first = await channel.send(MESSAGE, "post")
        again = await channel.send(MESSAGE, "post")
        other = await channel.send(MESSAGE, "other-target")
    finally:
        await channel.aclose()
    assert first == again
    assert len(fake.posted) == 2
    assert other.provider_message_id != first.provider_message_id


async def test_several_parts_are_a_thread(fake: FakeMastodon) -> None:
    channel = channel_for(fake)
    try:
        receipt = await channel.send(THREAD, "post")
    finally:
        await channel.aclose()
    first, second, third = fake.posted
    assert receipt.provider_message_id == first
    assert fake.statuses[first]["in_reply_to_id"] is None
    assert fake.statuses[second]["in_reply_to_id"] == first
    assert fake.statuses[third]["in_reply_to_id"] == second


async def test_a_thread_cut_by_a_failure_continues_on_retry(fake: FakeMastodon) -> None:
    channel = channel_for(fake)
    fake.faults = [None, "server_error"]
    try:
        with pytest.raises(Transient):
            await channel.send(THREAD, "post")
        receipt = await channel.send(THREAD, "post")
    finally:
        await channel.aclose()
    assert len(fake.posted) == 3
    assert receipt.provider_message_id == fake.posted[0]
    assert fake.statuses[fake.posted[1]]["in_reply_to_id"] == fake.posted[0]


async def test_content_warning_by_severity_when_configured(fake: FakeMastodon) -> None:
    channel = channel_for(fake, content_warning=("Extreme",), visibility="unlisted")
    minor = OutboundMessage(parts=("Aviso menor",), severity="Minor", extra={"alert_id": 9})
    try:
        await channel.send(MESSAGE, "post")
        await channel.send(minor, "post")
    finally:
        await channel.aclose()
    extreme, small = (fake.statuses[i] for i in fake.posted)
    assert extreme["spoiler_text"] == "⚠️ ALERTA / WARNING"
    assert extreme["visibility"] == "unlisted"
    assert small["spoiler_text"] == ""


async def test_a_content_warning_that_would_not_fit_is_dropped_not_the_text(
    fake: FakeMastodon,
) -> None:
    text = "x" * 495
    channel = channel_for(fake, content_warning=("Extreme",))
    try:
        await channel.send(OutboundMessage(parts=(text,), severity="Extreme"), "post")
    finally:
        await channel.aclose()
    assert fake.statuses[fake.posted[0]]["spoiler_text"] == ""


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("unauthorized", Permanent),
        ("forbidden", Permanent),
        ("unprocessable", Permanent),
        ("not_found", Permanent),
        ("server_error", Transient),
        ("rate_limited", RateLimited),
    ],
)
async def test_failures_map_to_error_classes(
    fake: FakeMastodon, fault: str, error: type[Exception]
) -> None:
    fake.faults = [fault]
    channel = channel_for(fake)
    try:
        with pytest.raises(error):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert fake.posted == []


async def test_wrong_token_is_permanent_and_says_so(fake: FakeMastodon) -> None:
    channel = MastodonChannel("mastodon", fake.url, access_token="wrong")
    try:
        with pytest.raises(Permanent, match="access token"):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()


async def test_429_waits_until_the_reset_time(fake: FakeMastodon) -> None:
    fake.faults = ["rate_limited"]
    fake.reset_in_s = 120
    channel = channel_for(fake)
    try:
        with pytest.raises(RateLimited) as caught:
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert 100 < caught.value.retry_after <= 120


async def test_a_spent_quota_pauses_the_next_send_without_asking(fake: FakeMastodon) -> None:
    fake.remaining = 1
    fake.reset_in_s = 60
    channel = channel_for(fake)
    try:
        await channel.send(MESSAGE, "post")
        asked = len(fake.requests)
        with pytest.raises(RateLimited) as caught:
            await channel.send(THREAD, "post")
    finally:
        await channel.aclose()
    assert len(fake.requests) == asked  # the instance was not asked again
    assert 0 < caught.value.retry_after <= 60


async def test_a_timeout_after_the_request_left_is_sent_but_unknown(fake: FakeMastodon) -> None:
    fake.faults = ["timeout"]
    channel = channel_for(fake, timeout_s=0.3)
    try:
        with pytest.raises(SentButUnknown):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert len(fake.posted) == 1  # it did arrive: exactly why a blind retry is unsafe


async def test_update_edits_and_cancel_replies(fake: FakeMastodon) -> None:
    channel = channel_for(fake)
    update = OutboundMessage(parts=("ACTUALIZACIÓN: sismo M6.3",), language="es")
    cancel = OutboundMessage(parts=("CANCELADO / CANCELLED", "Segunda parte"), language="es")
    try:
        first = await channel.send(MESSAGE, "post")
        assert first.provider_message_id is not None
        assert channel.follow_up_for("Update") == "edit"
        assert channel.follow_up_for("Cancel") == "reply"
        assert channel.follow_up_for("Alert") is None
        edited = await channel.edit(first.provider_message_id, update, "post")
        replied = await channel.reply(first.provider_message_id, cancel, "post")
        await channel.delete(first.provider_message_id, "post")
    finally:
        await channel.aclose()
    assert edited.provider_message_id == first.provider_message_id
    assert fake.edits[0][0] == first.provider_message_id
    assert fake.edits[0][1]["status"] == "ACTUALIZACIÓN: sismo M6.3"
    reply_id = replied.provider_message_id
    assert fake.statuses[reply_id]["in_reply_to_id"] == first.provider_message_id
    assert fake.deleted == [first.provider_message_id]


async def test_follow_ups_of_a_gone_status_are_permanent(fake: FakeMastodon) -> None:
    channel = channel_for(fake)
    one = OutboundMessage(parts=("x",))
    try:
        with pytest.raises(Permanent, match="gone"):
            await channel.edit("404404", one, "post")
        with pytest.raises(Permanent):
            await channel.reply("404404", one, "post")
        with pytest.raises(Permanent):
            await channel.delete("404404", "post")
        with pytest.raises(Permanent, match="parts"):
            await channel.edit("1", THREAD, "post")
    finally:
        await channel.aclose()


def test_from_config_reads_options_and_reports_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", "tok")
    context = ChannelContext(data_dir=tmp_path)
    good = ChannelConfig(
        name="m",
        kind="mastodon",
        file=tmp_path / "m.toml",
        secrets={"access_token": "TEST_MASTODON_TOKEN"},
        options={"api_url": "https://social.example", "visibility": "unlisted"},
    )
    channel = from_config(good, context)
    assert channel.visibility == "unlisted"
    assert "tok" not in repr(channel)
    bad = ChannelConfig(
        name="m",
        kind="mastodon",
        file=tmp_path / "m.toml",
        secrets={},
        options={"api_url": "social.example", "visibility": "everyone"},
    )
    with pytest.raises(ConfigError) as caught:
        from_config(bad, context)
    keys = {p.key for p in caught.value.problems}
    assert keys == {"options.api_url", "options.visibility", "secrets.access_token"}
